package yamlconf

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
)

var unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)

// suggestField adds ` (did you mean "labels"?)` to go-yaml's unknown-field
// message, from the YAML names of v's type and the types it holds.
func suggestField(msg string, v any) string {
	m := unknownField.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	names := map[string]bool{}
	yamlNames(reflect.TypeOf(v), names, 0)
	var list []string
	for n := range names {
		list = append(list, n)
	}
	slices.Sort(list) // ties go to the first name, whatever the map order
	if best := Closest(m[1], list); best != "" {
		return msg + ` (did you mean "` + best + `"?)`
	}
	return msg
}

func yamlNames(t reflect.Type, out map[string]bool, depth int) {
	for depth < 8 && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map) {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || depth >= 8 {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
		yamlNames(f.Type, out, depth+1)
	}
}

// Closest returns the candidate nearest to got by edit distance, when it
// is near enough to be a typo (at most a third of its length, and 3), or
// "".
func Closest(got string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(got, c)
		if limit := min(3, max(1, len(c)/3)); d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, with a transposition of two
// neighbours counted as one edit ("lables" is one edit from "labels").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
