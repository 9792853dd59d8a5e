package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pawlogs/paw/compiler"
	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/patterns"
)

// reviewItem is one log pattern of escalated records no one has answered
// yet: its records, one line of each of its masked templates (what an
// answer is sent for, as the teacher's answer to a pattern is kept), and
// the first of those.
type reviewItem struct {
	Pattern string   `json:"pattern"`
	Count   int      `json:"count"`
	Example string   `json:"example"`
	Lines   []string `json:"lines"`
}

func runReview(e *env, args []string) error {
	fs := newFlags(e, "review")
	sidecar := fs.String("sidecar", "http://127.0.0.1:8080", "paw serve, which keeps the answer logs (token from $PAW_TOKEN)")
	file := fs.String("file", "", "escalated records: a review file (escalate.to file://...) or a review topic's records saved as lines")
	field := fs.String("field", "log", "the field holding the text in JSON records")
	answer := fs.Bool("answer", false, "ask for each pattern's label on stdin and send the answers")
	asJSON := fs.Bool("json", false, "print the unanswered patterns as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *file == "" {
		return usagef("want one program name and --file")
	}
	name := pos[0]
	client := &http.Client{Timeout: 30 * time.Second}
	base := strings.TrimSuffix(*sidecar, "/") + "/v1/programs/" + name
	var logged struct {
		Answers []compiler.Answer `json:"answers"`
	}
	if err := sidecarJSON(client, http.MethodGet, base+"/answers", nil, &logged); err != nil {
		return err
	}
	answered := map[string]bool{}
	for _, a := range logged.Answers {
		answered[runtime.Normalize([]byte(a.Line), runtime.DefaultMaxBytes)] = true
	}
	items, unlisted, err := unanswered(*file, *field, answered)
	if err != nil {
		return err
	}
	if unlisted > 0 {
		fmt.Fprintf(e.stderr, "paw review: %d records not listed, past the first %d patterns or %d templates\n", unlisted, maxReviewPatterns, maxReviewLines)
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"program": name, "unanswered": items})
	}
	fmt.Fprintf(e.stdout, "%d escalated patterns of %s no one has answered (%d templates answered in the log)\n", len(items), name, len(answered))
	var out []map[string]string
	in := bufio.NewReader(e.stdin)
	for _, it := range items {
		fmt.Fprintf(e.stdout, "%6d  %s\n        e.g. %s\n", it.Count, it.Pattern, it.Example)
		if !*answer {
			continue
		}
		fmt.Fprintf(e.stdout, "        label (empty: skip)? ")
		line, err := in.ReadString('\n')
		label := strings.TrimSpace(line)
		if label != "" {
			for _, l := range it.Lines {
				out = append(out, map[string]string{"line": l, "label": label, "by": compiler.ByPerson})
			}
		}
		if err != nil {
			break
		}
	}
	if len(out) == 0 {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"answers": out})
	var res struct {
		Accepted int  `json:"accepted"`
		Answers  int  `json:"answers"`
		Learning bool `json:"learning"`
	}
	if err := sidecarJSON(client, http.MethodPost, base+"/answers", body, &res); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "sent %d answers; the log holds %d", res.Accepted, res.Answers)
	if res.Learning {
		fmt.Fprint(e.stdout, "; the program is learning from them")
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// Review bounds: a review file of any size lists at most this many
// patterns and keeps at most this many lines to send answers for (what
// one request to the sidecar may carry); the records past them are
// counted.
const (
	maxReviewPatterns = 10000
	maxReviewLines    = 10000
)

// unanswered groups the escalated records of a review file whose masked
// template the log has no answer for by log pattern (runtime/patterns) and
// kind of line within it, largest first: a person answers once per kind
// of pattern, as the teacher is asked. It also returns how many records
// it could not list.
func unanswered(path, field string, answered map[string]bool) ([]reviewItem, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	// Each pattern's templates, a line and a count each, until the kinds
	// can be read: once all lines are mined.
	type template struct {
		line  string
		count int
	}
	miner := patterns.New(patterns.Config{MaxLineBytes: runtime.DefaultMaxBytes, MaxPatterns: maxReviewPatterns})
	byPat := map[*patterns.Pattern][]*template{}
	var order []*patterns.Pattern
	byTemplate := map[string]*template{}
	unlisted := 0
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		line, rerr := readRecord(br)
		if len(bytes.TrimSpace(line)) > 0 {
			text := reviewText(line, field)
			if k := runtime.Normalize([]byte(text), runtime.DefaultMaxBytes); !answered[k] {
				p := miner.Add(text)
				t := byTemplate[k]
				_, known := byPat[p]
				switch {
				case t != nil:
				case len(byTemplate) < maxReviewLines && (known || len(order) < maxReviewPatterns):
					t = &template{line: text}
					byTemplate[k] = t
					if !known {
						order = append(order, p)
					}
					byPat[p] = append(byPat[p], t)
				default:
					unlisted++
				}
				if t != nil {
					t.count++
				}
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return nil, 0, rerr
		}
	}
	// Merged by kind once all are mined: a pattern widens as lines join it.
	byKey := map[string]*reviewItem{}
	var items []*reviewItem
	for _, p := range order {
		for _, t := range byPat[p] {
			k := miner.KindKey(p, t.line)
			it := byKey[k]
			if it == nil {
				it = &reviewItem{Pattern: p.String(), Example: t.line}
				byKey[k] = it
				items = append(items, it)
			}
			it.Count += t.count
			it.Lines = append(it.Lines, t.line)
		}
	}
	out := make([]reviewItem, len(items))
	for i, it := range items {
		out[i] = *it
	}
	slices.SortStableFunc(out, func(a, b reviewItem) int { return b.Count - a.Count })
	return out, unlisted, nil
}

// reviewText reads a review line: out_paw's {"record": {...}} lines, a JSON
// record, or plain text.
func reviewText(rec []byte, field string) string {
	var obj map[string]any
	if json.Unmarshal(rec, &obj) != nil {
		return string(rec)
	}
	if inner, ok := obj["record"].(map[string]any); ok {
		obj = inner
	}
	if s, ok := obj[field].(string); ok {
		return s
	}
	return string(rec)
}

// sidecarJSON calls the sidecar with the token from $PAW_TOKEN.
func sidecarJSON(client *http.Client, method, url string, body []byte, out any) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := os.Getenv("PAW_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sidecar %s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(data)))
	}
	return json.Unmarshal(data, out)
}
