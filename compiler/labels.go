package compiler

import (
	"errors"
	"fmt"

	"github.com/goccy/go-yaml"
)

// labelsYAML is a spec's labels key as written: a list of labels, or a map
// from each label to a short description of it, in order.
type labelsYAML struct {
	names        []string
	descriptions map[string]string // nil for the list form
}

// UnmarshalYAML takes either form.
func (l *labelsYAML) UnmarshalYAML(unmarshal func(any) error) error {
	var list []string
	if err := unmarshal(&list); err == nil {
		l.names, l.descriptions = list, nil
		return nil
	}
	var m yaml.MapSlice
	if err := unmarshal(&m); err != nil {
		var raw any
		unmarshal(&raw)
		return fmt.Errorf("labels: want a list of labels, or a map from each label to its description, not %q", fmt.Sprint(raw))
	}
	l.names, l.descriptions = nil, map[string]string{}
	for _, it := range m {
		name, ok := it.Key.(string)
		if !ok {
			return fmt.Errorf("labels: label %q is not a string", fmt.Sprint(it.Key))
		}
		desc, _ := it.Value.(string)
		if it.Value != nil && desc == "" {
			if _, isString := it.Value.(string); !isString {
				return fmt.Errorf("labels: the description of %q is not text", name)
			}
		}
		l.names = append(l.names, name)
		l.descriptions[name] = desc
	}
	if len(l.names) == 0 {
		return errors.New("labels: the map is empty")
	}
	return nil
}

// MarshalYAML writes the form that was read: the list form stays a list,
// so specs without descriptions normalize to the same bytes as before.
func (l labelsYAML) MarshalYAML() (any, error) {
	if l.descriptions == nil {
		return l.names, nil
	}
	m := make(yaml.MapSlice, len(l.names))
	for i, n := range l.names {
		m[i] = yaml.MapItem{Key: n, Value: l.descriptions[n]}
	}
	return m, nil
}
