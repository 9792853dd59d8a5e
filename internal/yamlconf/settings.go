package yamlconf

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
)

// Settings flattens a config to key/value pairs for log/slog, named by
// their YAML keys and dotted where nested (batch.max_records), in sorted
// order: the one line a long-running command logs at start, so an
// operator sees every setting in effect, defaults included, as Loki's
// Fluent Bit plugin logs its properties. A key ending in password or
// token logs only whether it is set.
func Settings(v any) []any {
	data, err := yaml.Marshal(v)
	if err != nil {
		return []any{"settings_error", err.Error()}
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return []any{"settings_error", err.Error()}
	}
	var out []any
	flatten("", m, &out)
	return out
}

func flatten(prefix string, m map[string]any, out *[]any) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := prefix + k
		switch v := m[k].(type) {
		case map[string]any:
			flatten(key+".", v, out)
		default:
			if secret(k) {
				v = v != nil && fmt.Sprint(v) != ""
				key += "_set"
			}
			*out = append(*out, key, v)
		}
	}
}

func secret(key string) bool {
	k := strings.ToLower(key)
	return strings.HasSuffix(k, "password") || strings.HasSuffix(k, "token")
}
