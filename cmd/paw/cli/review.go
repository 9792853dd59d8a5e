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
)

// reviewItem is one escalated template no one has answered yet.
type reviewItem struct {
	Template string `json:"template"`
	Count    int    `json:"count"`
	Example  string `json:"example"`
}

func runReview(e *env, args []string) error {
	fs := newFlags(e, "review")
	sidecar := fs.String("sidecar", "http://127.0.0.1:8080", "paw serve, which keeps the answer logs (token from $PAW_TOKEN)")
	file := fs.String("file", "", "escalated records: a review file (escalate.to file://...) or a review topic's records saved as lines")
	field := fs.String("field", "log", "the field holding the text in JSON records")
	answer := fs.Bool("answer", false, "ask for each template's label on stdin and send the answers")
	asJSON := fs.Bool("json", false, "print the unanswered templates as JSON")
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
	items, err := unanswered(*file, *field, answered)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"program": name, "unanswered": items})
	}
	fmt.Fprintf(e.stdout, "%d escalated templates of %s no one has answered (%d answered in the log)\n", len(items), name, len(answered))
	var out []map[string]string
	in := bufio.NewReader(e.stdin)
	for _, it := range items {
		fmt.Fprintf(e.stdout, "%6d  %s\n        e.g. %s\n", it.Count, it.Template, it.Example)
		if !*answer {
			continue
		}
		fmt.Fprintf(e.stdout, "        label (empty: skip)? ")
		line, err := in.ReadString('\n')
		label := strings.TrimSpace(line)
		if label != "" {
			out = append(out, map[string]string{"line": it.Example, "label": label, "by": compiler.ByPerson})
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

// unanswered groups the escalated records of a review file by masked
// template, leaving out the answered ones, largest first.
func unanswered(path, field string, answered map[string]bool) ([]reviewItem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	byKey := map[string]*reviewItem{}
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		rec, rerr := readRecord(br)
		if len(bytes.TrimSpace(rec)) > 0 {
			text := reviewText(rec, field)
			k := runtime.Normalize([]byte(text), runtime.DefaultMaxBytes)
			if !answered[k] {
				it := byKey[k]
				if it == nil {
					it = &reviewItem{Template: k, Example: text}
					byKey[k] = it
				}
				it.Count++
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return nil, rerr
		}
	}
	items := make([]reviewItem, 0, len(byKey))
	for _, it := range byKey {
		items = append(items, *it)
	}
	slices.SortFunc(items, func(a, b reviewItem) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Template, b.Template)
	})
	return items, nil
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
