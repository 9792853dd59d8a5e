package runtime

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"
)

// BatcherConfig sizes the micro-batcher. Zero values take the defaults.
type BatcherConfig struct {
	// MaxBatch closes a batch once it holds this many records.
	// Default: DefaultMaxBatch.
	MaxBatch int
	// MaxDelay closes a batch this long after its first record arrived,
	// full or not. Default: DefaultMaxDelay. Negative: never wait; a
	// batch takes what is queued, for a caller that batches already.
	MaxDelay time.Duration
	// QueueSize bounds the requests waiting for a batch; Classify blocks
	// (backpressure) when it is full. Default: 4 x MaxBatch.
	QueueSize int
	// Workers featurize and run batches in parallel. Default: GOMAXPROCS.
	Workers int
	// OnBatch, if set, is called by a worker after each batch with its
	// record count and its featurize-plus-inference time.
	OnBatch func(records int, took time.Duration)
	// TemplateCache is how many token-stream keys each worker remembers
	// the decisions of (see Featurizer.Scan): records that differ only in
	// masked variables (numbers, ids, addresses, times) skip featurization
	// and ONNX Runtime. Its results are the ones the model would compute.
	// As many records' keys are remembered too (the key memo), so that a
	// record need not be scanned for its key. Default: DefaultTemplateCache;
	// negative turns both off.
	TemplateCache int
	// Stats, if set, accumulates counts; batchers may share one.
	Stats *BatchStats
}

// BatchStats counts what batchers did. Safe for concurrent use.
type BatchStats struct {
	records, lookups, hits atomic.Int64
	inference              Latencies // per batch: featurization and ONNX Runtime
}

// BatchCounts is a snapshot of BatchStats.
type BatchCounts struct {
	Records int64 // records scored
	Lookups int64 // template-cache lookups (records x featurizer groups)
	Hits    int64 // lookups answered from the cache
	// InferenceMean and InferenceP99 are per-batch featurize-plus-
	// inference times.
	InferenceMean, InferenceP99 time.Duration
}

// Counts returns the totals so far.
func (s *BatchStats) Counts() BatchCounts {
	return BatchCounts{Records: s.records.Load(), Lookups: s.lookups.Load(), Hits: s.hits.Load(),
		InferenceMean: s.inference.Mean(), InferenceP99: s.inference.Quantile(0.99)}
}

// Batcher defaults.
const (
	DefaultMaxBatch = 256 // same throughput as 512 here, p99 1.4 ms instead of 3.6 ms
	DefaultMaxDelay = 2 * time.Millisecond
	// DefaultTemplateCache entries per worker and featurizer: about 0.5 MiB
	// for a few two-label programs, and 0.25 MiB for the key memo.
	DefaultTemplateCache = 1 << 14
)

// ErrClosed is returned by a batcher or pipeline that is closing or
// closed.
var ErrClosed = errors.New("closed")

func (c BatcherConfig) withDefaults() BatcherConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 4 * c.MaxBatch
	}
	if c.Workers <= 0 {
		c.Workers = goruntime.GOMAXPROCS(0)
	}
	if c.TemplateCache == 0 {
		c.TemplateCache = DefaultTemplateCache
	}
	return c
}

// Decision is one program's verdict on one record.
type Decision struct {
	Program string // program name
	ID      string // program artifact ID
	Label   string
	Score   float32 // calibrated probability of Label
	Probs   []float32
	// Teacher is set when the label is the teacher's answer to an
	// escalation, not the program's (Score is then 1).
	Teacher bool
	// Novelty is how unlike the program's training data the record is,
	// in [0, 1] (see noveltyData).
	Novelty float32
}

// Result holds every program's decision on one record, in program order.
type Result struct {
	Decisions []Decision
}

// Lookup returns the decision of the named program.
func (r *Result) Lookup(program string) (Decision, bool) {
	for _, d := range r.Decisions {
		if d.Program == program {
			return d, true
		}
	}
	return Decision{}, false
}

// request is one Classify call, or a MaxBatch piece of one: its records
// and the memory their results go to. Classify allocates that memory and
// hands it out only on success, so a caller that gives up on cancellation
// never has a worker write into memory it reuses.
type request struct {
	ctx     context.Context
	texts   [][]byte
	results []Result
	probs   []float32 // backing store of every Decision.Probs
	err     error
	done    chan struct{}
}

// Batcher runs many callers' records through a ProgramSet in micro-batches.
type Batcher struct {
	cfg     BatcherConfig
	set     *ProgramSet
	queue   chan *request
	batches chan []*request
	closing chan struct{}
	stopped chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	fused   []*fusedRun // by featurizer group; nil where its programs run alone
}

// NewBatcher starts the batcher's collector and workers. Close stops them.
func NewBatcher(set *ProgramSet, cfg BatcherConfig) (*Batcher, error) {
	if set == nil || len(set.programs) == 0 {
		return nil, errors.New("batcher needs at least one program")
	}
	cfg = cfg.withDefaults()
	for _, p := range set.programs {
		if cfg.MaxBatch > p.opts.MaxBatch {
			return nil, fmt.Errorf("max_batch %d exceeds program %s's limit %d", cfg.MaxBatch, p.Name(), p.opts.MaxBatch)
		}
	}
	b := &Batcher{
		cfg:     cfg,
		set:     set,
		queue:   make(chan *request, cfg.QueueSize),
		batches: make(chan []*request, cfg.Workers),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
		fused:   make([]*fusedRun, len(set.groups)),
	}
	for g := range set.groups {
		var progs []int
		for pi := range set.programs {
			if set.groupOf[pi] == g {
				progs = append(progs, pi)
			}
		}
		f, err := newFusedRun(set, progs, cfg.MaxBatch, cfg.Workers)
		if err != nil {
			b.closeFused()
			return nil, err
		}
		b.fused[g] = f
	}
	b.wg.Add(1 + cfg.Workers)
	go b.collect()
	for i := 0; i < cfg.Workers; i++ {
		go b.work()
	}
	go func() {
		b.wg.Wait()
		close(b.stopped)
	}()
	return b, nil
}

// Config returns the effective configuration.
func (b *Batcher) Config() BatcherConfig { return b.cfg }

// Classify scores texts and returns one Result per text. It blocks while the
// queue is full, and returns early with ctx's error on cancellation. A call
// larger than MaxBatch is split so that several workers share it.
func (b *Batcher) Classify(ctx context.Context, texts ...[]byte) ([]Result, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	select {
	case <-b.closing:
		return nil, ErrClosed
	default:
	}
	np, sl, max := len(b.set.programs), b.set.sumLabels, b.cfg.MaxBatch
	results := make([]Result, len(texts))
	decs := make([]Decision, len(texts)*np)
	probs := make([]float32, len(texts)*sl)
	for i := range results {
		results[i].Decisions = decs[i*np : (i+1)*np : (i+1)*np]
	}
	reqs := make([]request, 0, (len(texts)+max-1)/max)
	for lo := 0; lo < len(texts); lo += max {
		hi := min(lo+max, len(texts))
		reqs = append(reqs, request{ctx: ctx, texts: texts[lo:hi], results: results[lo:hi], probs: probs[lo*sl : hi*sl], done: make(chan struct{})})
	}
	for i := range reqs {
		select {
		case b.queue <- &reqs[i]:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.closing:
			return nil, ErrClosed
		}
	}
	for i := range reqs {
		if err := b.wait(ctx, &reqs[i]); err != nil {
			return nil, err
		}
	}
	return results, nil
}

func (b *Batcher) wait(ctx context.Context, req *request) error {
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stopped:
		// The batcher may have stopped just after taking the request.
		select {
		case <-req.done:
			return req.err
		default:
			return ErrClosed
		}
	}
}

// Close stops accepting records, finishes the queued ones and stops the
// goroutines. It does not close the programs.
func (b *Batcher) Close() {
	b.once.Do(func() { close(b.closing) })
	<-b.stopped
	b.closeFused()
}

// closeFused releases the fused groups' sessions; Close calls it once the
// workers have stopped, and every later call finds the pools closed.
func (b *Batcher) closeFused() {
	for _, f := range b.fused {
		if f != nil {
			f.close()
		}
	}
}

// collect groups queued requests into batches of MaxBatch records or
// MaxDelay age, whichever comes first.
func (b *Batcher) collect() {
	defer b.wg.Done()
	defer close(b.batches)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var first *request
		select {
		case first = <-b.queue:
		case <-b.closing:
			b.drain()
			return
		}
		batch := []*request{first}
		n := len(first.texts)
		if b.cfg.MaxDelay < 0 {
			b.batches <- b.takeQueued(batch, n) // what is queued, and go
			continue
		}
		timer.Reset(b.cfg.MaxDelay)
	fill:
		for n < b.cfg.MaxBatch {
			select {
			case r := <-b.queue:
				batch = append(batch, r)
				n += len(r.texts)
			case <-timer.C:
				break fill
			case <-b.closing:
				break fill
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		b.batches <- batch
	}
}

// drain hands what is still queued to the workers at shutdown.
func (b *Batcher) drain() {
	for {
		batch := b.takeQueued(nil, 0)
		if len(batch) == 0 {
			return
		}
		b.batches <- batch
	}
}

// takeQueued adds to batch, which holds n records, the requests queued
// now, up to MaxBatch records, without waiting for more.
func (b *Batcher) takeQueued(batch []*request, n int) []*request {
	for n < b.cfg.MaxBatch {
		select {
		case r := <-b.queue:
			batch = append(batch, r)
			n += len(r.texts)
		default:
			return batch
		}
	}
	return batch
}

func (b *Batcher) work() {
	defer b.wg.Done()
	ws := newWorkspace(b.set, b.cfg.MaxBatch, b.cfg.TemplateCache)
	ws.fused = b.fused
	ws.fusedOut = make([][][]float32, len(b.fused))
	for g, f := range b.fused {
		for i, pi := range f.progsOrNil() {
			ws.fusedProbs[pi] = make([]float32, runRows(b.cfg.MaxBatch)*f.widths[i])
			ws.fusedOut[g] = append(ws.fusedOut[g], ws.fusedProbs[pi])
		}
	}
	for batch := range b.batches {
		start := time.Now()
		records := ws.run(batch)
		if st := b.cfg.Stats; st != nil && records > 0 {
			st.inference.Observe(time.Since(start))
			st.records.Add(int64(records))
			st.lookups.Add(ws.lookups)
			st.hits.Add(ws.hits)
		}
		ws.lookups, ws.hits = 0, 0
		if b.cfg.OnBatch != nil && records > 0 {
			b.cfg.OnBatch(records, time.Since(start))
		}
	}
}

// workspace is one worker's reusable memory.
type workspace struct {
	set *ProgramSet
	max int
	// fused are the batcher's fused groups; fusedProbs receives each
	// fused program's probabilities (nil for the others), and fusedOut
	// holds them by group, in the order a fused run writes them.
	fused      []*fusedRun
	fusedProbs [][]float32
	fusedOut   [][][]float32
	// cache lookups and hits since the worker last reported them
	lookups, hits int64
	groups        []groupSpace
	probs         []float32
	items         []item
}

// featurize featurizes text as group g's next miss, reading the keywords
// of the group's described programs on the way.
func (ws *workspace) featurize(g int, gs *groupSpace, text []byte) {
	m := len(gs.misses)
	f := &gs.feats[m]
	gs.ptrs[m] = f
	if len(gs.kwPtrs) == 0 {
		ws.set.groups[g].feat.Featurize(text, f)
		return
	}
	for j, p := range ws.set.groupDescribed[g] {
		sc := &gs.kwScans[m*len(gs.kwPtrs)+j]
		*sc = kwScan{k: p.kw.match}
		gs.kwPtrs[j] = sc
	}
	ws.set.groups[g].feat.featurizeReading(text, f, gs.kwPtrs)
}

// groupSpace is a workspace's memory for one featurizer group.
type groupSpace struct {
	feats  []Features // hashnet-v1: the chunk's misses, featurized
	ptrs   []*Features
	toks   *Tokens
	seqs   [][]int64 // encoder-v1: the chunk's misses, tokenized
	emb    []float32 // encoder-v1: their pooled embeddings
	keys   []uint64  // the chunk's keys, by record
	misses []int     // chunk positions of the records to run
	rows   []float32
	cache  *templateCache // nil when off
	memo   *keyMemo       // with the cache: keys of earlier records' blind bytes
	// The keywords of the group's described programs, read from each miss
	// as it is featurized: kwScans[m*len(kwPtrs)+j] is miss m's reading
	// for the group's j-th described program (ProgramSet.kwIndex).
	kwScans []kwScan
	kwPtrs  []*kwScan
}

type item struct {
	req *request
	i   int
}

func newWorkspace(set *ProgramSet, maxBatch, cacheSize int) *workspace {
	ws := &workspace{set: set, max: maxBatch, groups: make([]groupSpace, len(set.groups)), fusedProbs: make([][]float32, len(set.programs))}
	maxLabels := 0
	for g, grp := range set.groups {
		gs := &ws.groups[g]
		if grp.enc != nil {
			gs.seqs = make([][]int64, maxBatch)
			for i := range gs.seqs {
				gs.seqs[i] = make([]int64, 0, grp.enc.Ref.MaxTokens)
			}
			gs.emb = make([]float32, maxBatch*grp.enc.Ref.Dim)
		} else {
			gs.feats = make([]Features, maxBatch)
			gs.ptrs = make([]*Features, maxBatch)
			for i := range gs.feats {
				gs.feats[i] = grp.feat.NewFeatures()
			}
			gs.toks = grp.feat.NewTokens()
			if n := len(set.groupDescribed[g]); n > 0 {
				gs.kwScans = make([]kwScan, maxBatch*n)
				gs.kwPtrs = make([]*kwScan, n)
			}
		}
		gs.keys = make([]uint64, maxBatch)
		gs.misses = make([]int, 0, maxBatch)
		gs.rows = make([]float32, maxBatch*set.groupLabels[g])
		if cacheSize > 0 {
			gs.cache = newTemplateCache(cacheSize, set.groupLabels[g])
			if grp.enc == nil {
				gs.memo = newKeyMemo(cacheSize)
			}
		}
	}
	for _, p := range set.programs {
		maxLabels = max(maxLabels, len(p.Manifest.Labels))
	}
	ws.probs = make([]float32, maxBatch*maxLabels)
	return ws
}

// run scores every record of the batch's live requests and completes them.
// It returns the number of records scored.
func (ws *workspace) run(batch []*request) int {
	items := ws.items[:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.err = r.ctx.Err()
			close(r.done)
			continue
		}
		for i := range r.texts {
			items = append(items, item{r, i})
		}
	}
	ws.items = items
	var failed error
	for lo := 0; lo < len(items) && failed == nil; lo += ws.max {
		chunk := items[lo:min(lo+ws.max, len(items))]
		failed = ws.score(chunk)
	}
	for _, r := range batch {
		select {
		case <-r.done:
		default:
			r.err = failed
			close(r.done)
		}
	}
	return len(items)
}

// score decides a chunk. Per featurizer group, each record is scanned and
// its key looked up; only the misses are featurized and run, and their
// probabilities (for every program of the group) are remembered.
func (ws *workspace) score(chunk []item) error {
	for g, grp := range ws.set.groups {
		gs := &ws.groups[g]
		gs.misses = gs.misses[:0]
		if grp.enc != nil {
			if err := ws.embed(grp.enc, gs, chunk); err != nil {
				return err
			}
			continue
		}
		for i, it := range chunk {
			text := it.req.texts[it.i]
			if gs.cache == nil {
				ws.featurize(g, gs, text)
				gs.misses = append(gs.misses, i)
				continue
			}
			key := gs.memo.key(grp.feat, text, gs.toks)
			gs.keys[i] = key
			ws.lookups++
			if gs.cache.has(key) {
				ws.hits++
				continue
			}
			// A miss is scanned again, for its features: cheaper than
			// keeping every record's tokens for the few that miss.
			ws.featurize(g, gs, text)
			gs.misses = append(gs.misses, i)
		}
	}
	for g, f := range ws.fused {
		if n := len(ws.groups[g].misses); f != nil && n > 0 {
			if err := f.run(ws.groups[g].ptrs[:n], ws.fusedOut[g]); err != nil {
				return err
			}
		}
	}
	for pi, p := range ws.set.programs {
		g := ws.set.groupOf[pi]
		gs := &ws.groups[g]
		k := len(p.Manifest.Labels)
		gl := ws.set.groupLabels[g]
		goff := ws.set.groupOffset[pi]
		if n := len(gs.misses); n > 0 {
			probs := ws.fusedProbs[pi] // a fused program's ran with its group
			if probs == nil {
				probs = ws.probs
				var err error
				if p.enc != nil {
					err = p.RunEmbeddings(gs.emb, n, probs)
				} else {
					err = p.Run(gs.ptrs[:n], probs)
				}
				if err != nil {
					return err
				}
			}
			for m, i := range gs.misses {
				row := gs.rows[m*gl+goff : m*gl+goff+k+1]
				copy(row[:k], probs[m*k:(m+1)*k])
				if p.feat != nil {
					row[k] = p.nov.features(gs.ptrs[m])
				} else {
					row[k] = p.nov.novelty(gs.keys[i], gs.seqs[m], p.enc)
				}
				if j := ws.set.kwIndex[pi]; j >= 0 {
					p.kw.mixScan(&gs.kwScans[m*len(gs.kwPtrs)+j], row[k], row[:k])
				}
			}
		}
		off := ws.set.probOffset[pi]
		m := 0
		for i, it := range chunk {
			var src []float32 // the program's probabilities, then its novelty
			if m < len(gs.misses) && gs.misses[m] == i {
				src = gs.rows[m*gl+goff : m*gl+goff+k+1]
				m++
			} else {
				src = gs.cache.row(gs.keys[i])[goff : goff+k+1]
			}
			base := it.i*ws.set.sumLabels + off
			probs := it.req.probs[base : base+k : base+k]
			copy(probs, src[:k])
			best, score := Decide(probs)
			it.req.results[it.i].Decisions[pi] = Decision{
				Program: p.Name(), ID: p.ID, Label: p.Manifest.Labels[best], Score: score, Probs: probs, Novelty: src[k],
			}
		}
	}
	for g := range ws.groups {
		gs := &ws.groups[g]
		if gs.cache == nil {
			continue
		}
		gl := ws.set.groupLabels[g]
		for m, i := range gs.misses {
			gs.cache.put(gs.keys[i], gs.rows[m*gl:(m+1)*gl])
		}
	}
	return nil
}

// embed tokenizes a chunk for an encoder group; records whose token ids
// the cache knows are hits, the others are embedded in one encoder run.
func (ws *workspace) embed(enc *Encoder, gs *groupSpace, chunk []item) error {
	for i, it := range chunk {
		m := len(gs.misses)
		gs.seqs[m] = enc.Tokenize(gs.seqs[m][:0], it.req.texts[it.i])
		key := hashIDs(gs.seqs[m])
		gs.keys[i] = key
		if gs.cache != nil {
			ws.lookups++
			if gs.cache.has(key) {
				ws.hits++
				continue
			}
		}
		gs.misses = append(gs.misses, i)
	}
	return enc.Embed(gs.seqs[:len(gs.misses)], gs.emb)
}

// templateCache is a direct-mapped table from token-stream key to the
// probabilities of every program of a featurizer group: fixed memory, no
// allocation, and a newer key simply replaces an older one in its slot.
type templateCache struct {
	keys  []uint64 // 0 marks an empty slot; keys are never 0
	rows  []float32
	width int
	mask  uint64
}

// maxTemplateCacheBytes bounds one cache's rows whatever the programs'
// label count: 60,000 labels once made a cache of 3.9 GB.
const maxTemplateCacheBytes = 16 << 20

func newTemplateCache(size, width int) *templateCache {
	n := 1
	for n < size && 2*n*width*4 <= maxTemplateCacheBytes {
		n <<= 1
	}
	return &templateCache{keys: make([]uint64, n), rows: make([]float32, n*width), width: width, mask: uint64(n - 1)}
}

func (c *templateCache) has(key uint64) bool { return c.keys[key&c.mask] == key }

// row is the cached probabilities of a key has reported present.
func (c *templateCache) row(key uint64) []float32 {
	s := int(key&c.mask) * c.width
	return c.rows[s : s+c.width]
}

func (c *templateCache) put(key uint64, probs []float32) {
	slot := key & c.mask
	c.keys[slot] = key
	copy(c.rows[int(slot)*c.width:], probs)
}

// ProgramSet is the programs that score every record. Programs with the same
// featurizer configuration share one featurization per record.
type ProgramSet struct {
	programs    []*Program
	groups      []featGroup
	groupOf     []int
	probOffset  []int // where each program's probabilities start in a record's row
	sumLabels   int
	groupOffset []int // where each program's probabilities start in its group's row
	groupLabels []int // width of a group's row: each program's labels and its novelty
	// Programs with keywords: a program's index among its group's
	// (-1 for none), and each group's, in order.
	kwIndex        []int
	groupDescribed [][]*Program
}

// featGroup is the programs that share one featurization: a hashnet-v1
// featurizer config, or an encoder-v1 encoder (the same files, run the
// same way).
type featGroup struct {
	cfg  FeaturizerConfig
	feat *Featurizer
	enc  *Encoder
}

func (g featGroup) has(p *Program) bool {
	if p.enc != nil || g.enc != nil {
		return p.enc != nil && g.enc != nil && sameEncoder(p.enc.Ref, g.enc.Ref)
	}
	return g.cfg == p.feat.cfg
}

func sameEncoder(a, b EncoderRef) bool {
	a.Name, b.Name = "", ""
	return a == b
}

// NewProgramSet groups programs by featurizer. Names must be unique.
func NewProgramSet(programs ...*Program) (*ProgramSet, error) {
	s := &ProgramSet{}
	names := map[string]bool{}
	for _, p := range programs {
		if names[p.Name()] {
			return nil, fmt.Errorf("two programs are named %q", p.Name())
		}
		names[p.Name()] = true
		g := -1
		for i, grp := range s.groups {
			if grp.has(p) {
				g = i
				break
			}
		}
		if g < 0 {
			g = len(s.groups)
			grp := featGroup{feat: p.feat, enc: p.enc}
			if p.feat != nil {
				grp.cfg = p.feat.cfg
			}
			s.groups = append(s.groups, grp)
			s.groupLabels = append(s.groupLabels, 0)
			s.groupDescribed = append(s.groupDescribed, nil)
		}
		kw := -1
		if p.kw != nil {
			kw = len(s.groupDescribed[g])
			s.groupDescribed[g] = append(s.groupDescribed[g], p)
		}
		s.kwIndex = append(s.kwIndex, kw)
		s.programs = append(s.programs, p)
		s.groupOf = append(s.groupOf, g)
		s.probOffset = append(s.probOffset, s.sumLabels)
		s.sumLabels += len(p.Manifest.Labels)
		s.groupOffset = append(s.groupOffset, s.groupLabels[g])
		s.groupLabels[g] += len(p.Manifest.Labels) + 1
	}
	return s, nil
}

// Programs returns the set's programs in order.
func (s *ProgramSet) Programs() []*Program { return s.programs }
