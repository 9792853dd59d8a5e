package cli

import (
	"flag"
	"strings"

	"github.com/pawlogs/paw/internal/yamlconf"
)

// didYouMean is ` (did you mean "x"?)` for the known name closest to got,
// or "" when none is close.
func didYouMean(got string, known []string) string {
	if best := yamlconf.Closest(got, known); best != "" {
		return ` (did you mean "` + best + `"?)`
	}
	return ""
}

// flagError adds a suggestion to flag's "flag provided but not defined".
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	const undefined = "flag provided but not defined: -"
	if name, ok := strings.CutPrefix(msg, undefined); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		name = strings.TrimLeft(name, "-")
		if best := yamlconf.Closest(name, names); best != "" {
			return msg + ` (did you mean --` + best + `?)`
		}
	}
	return msg
}
