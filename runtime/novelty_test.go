package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime"
	"github.com/pawlogs/paw/runtime/patterns"
)

// Novelty is 0 for a training template (whatever its numbers), 1 for a
// line of words training never saw, and the unseen share in between; the
// template cache gives the same values as running the model.
func TestNoveltyOfRecords(t *testing.T) {
	env := openEnv(t)
	texts := [][]byte{
		[]byte("ERROR request 3 failed with exception timeout"),       // a training example
		[]byte("ERROR request 991 failed with exception timeout"),     // its template
		[]byte("ERROR request 5 failed: disk quota exceeded on /var"), // some words known
		[]byte("zebra quokka narwhal"),                                // none known
	}
	for _, cache := range []int{0, -1} {
		p, err := runtime.NewProgram(env, errorsProgram(t, "errs"), runtime.ProgramOptions{})
		if err != nil {
			t.Fatal(err)
		}
		set, _ := runtime.NewProgramSet(p)
		b, err := runtime.NewBatcher(set, runtime.BatcherConfig{TemplateCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		res, err := b.Classify(context.Background(), append(texts, texts...)...)
		if err != nil {
			t.Fatal(err)
		}
		nov := make([]float32, len(res))
		for i, r := range res {
			nov[i] = r.Decisions[0].Novelty
		}
		if nov[0] != 0 || nov[1] != 0 || !(nov[2] > 0.1 && nov[2] < 0.9) || nov[3] != 1 {
			t.Errorf("cache %d: novelty %v, want 0, 0, between, 1", cache, nov[:4])
		}
		for i := range texts { // the second round hits the cache
			if nov[i] != nov[i+len(texts)] {
				t.Errorf("cache %d: novelty of %q is %v, then %v", cache, texts[i], nov[i], nov[i+len(texts)])
			}
		}
		b.Close()
		p.Close()
	}
}

// escalate.novel_above sends an unseen line for review even when it is
// scored confidently, and not a known one.
func TestEscalateNovelAbove(t *testing.T) {
	pl := errsPipeline(t, openEnv(t), "steps:\n  - tag: {programs: [errs]}\n  - route: {program: errs, routes: {error: errors}, default: rest, escalate: {novel_above: 0.5, to: review}}\n")
	outs, err := pl.ProcessTexts(context.Background(), [][]byte{[]byte("ERROR request 7 failed with exception timeout"), []byte("zebra quokka narwhal")})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs[0].Escalations) != 0 || len(outs[1].Escalations) != 1 || outs[1].Escalations[0].Novelty != 1 || outs[1].Tags[0].Novelty != 1 {
		t.Fatalf("escalations %+v / %+v", outs[0], outs[1])
	}
	if n := pl.Novel()["errs"]; n != 1 {
		t.Fatalf("novel count %d, want 1", n)
	}
	if _, err := runtime.ParsePipelineConfig("p.yaml", []byte("steps:\n  - filter: {program: x, keep: [a], escalate: {to: review}}\n")); err == nil {
		t.Fatal("an escalate without below or novel_above was accepted")
	}
}

// TestNoveltyPatternsFitTheManifest: lines whose patterns take many bytes
// as JSON (a < takes 6) are listed only up to the manifest's bound.
func TestNoveltyPatternsFitTheManifest(t *testing.T) {
	m := patterns.New(patterns.Config{})
	for i := range 200 {
		m.Add(fmt.Sprintf("%s event%c%c", strings.Repeat("<", 1500), 'a'+i%26, 'a'+i/26))
	}
	listed := runtime.NoveltyPatterns(m)
	size := 0
	for _, p := range listed {
		b, _ := json.Marshal(p)
		size += len(b)
	}
	if len(listed) == 200 || size > 256<<10 || size < 240<<10 {
		t.Fatalf("%d of 200 patterns listed, %d bytes as JSON", len(listed), size)
	}
}
