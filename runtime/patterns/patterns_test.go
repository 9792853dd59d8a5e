package patterns

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestMinerGroupsByTemplate(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []int // group index per line
	}{
		{"numbers and ids vary", []string{
			"Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6",
			"Received block blk_7503483334202473044 of size 67108864 from /10.250.19.102",
			"Deleting block blk_-5140072410813878235 file /mnt/hadoop/dfs/data/current/subdir19/blk_-5140072410813878235",
		}, []int{0, 0, 1}},
		{"key=value pairs", []string{
			"acquire lock=86152250, flags=0x1, tag=\"AudioMix\", uid=1041",
			"acquire lock=173466309, flags=0x1, tag=\"RILJ_ACK_WL\", uid=1001",
			"release lock=173466309, flg=0x0",
		}, []int{0, 0, 1}},
		{"a list of values is one variable", []string{
			"10.11.21.143,10.11.10.1 \"GET /latest/meta-data/ HTTP/1.1\" status: 200 len: 134",
			"10.11.10.1 \"GET /v2/servers/detail HTTP/1.1\" status: 200 len: 1916",
		}, []int{0, 0}},
		{"values written differently", []string{
			"proxy.example.com:5070 close, 0 bytes sent, 0 bytes received, lifetime 00:01",
			"www.example.com:80 close, 6719 bytes (6.56 KB) sent, 644545 bytes (629 KB) received, lifetime <1 sec",
			"proxy.example.com:5070 open through proxy proxy.example.com:5070 HTTPS",
		}, []int{0, 0, 1}},
		{"a dotted source varies within an event", []string{
			"com.apple.icloud.fmfd.heartbeat: scheduler_evaluate_activity told me to run this job; however, but the start time isn't for 439034 seconds.  Ignoring.",
			"com.apple.Safari.SafeBrowsing.Update: scheduler_evaluate_activity told me to run this job; however, but the start time isn't for 2450 seconds.  Ignoring.",
		}, []int{0, 0}},
		{"timestamps inside messages", []string{
			"connection from 217.187.83.50 () at Mon Jul 25 23:24:09 2005",
			"connection from 218.38.58.3 () at Wed Jun 27 10:59:53 2005",
		}, []int{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Config{})
			ps := make([]*Pattern, len(tc.lines))
			for i, l := range tc.lines {
				ps[i] = m.Add(l)
			}
			keys := map[int]string{}
			for i, g := range tc.want {
				k := Key(ps[i])
				if prev, ok := keys[g]; ok && prev != k {
					t.Errorf("line %d: pattern %q, want %q", i, ps[i], prev)
				}
				for og, ok2 := range keys {
					if og != g && ok2 == k {
						t.Errorf("line %d joined group %d's pattern %q", i, og, k)
					}
				}
				keys[g] = k
			}
		})
	}
}

func TestAddKeyed(t *testing.T) {
	type add struct {
		line string
		key  uint64
	}
	tests := []struct {
		name     string
		maxPats  int
		adds     []add
		samePat  [][2]int // pairs of adds that must join one pattern
		otherPat [][2]int // pairs that must not
		count    int      // the first add's pattern's count at the end
		want     string   // the first add's pattern, when given
	}{
		{"a key's lines join its pattern once settled lines were mined, whatever their words", 0, append(
			slices.Repeat([]add{{"disk sda failed", 7}}, settled),
			add{"something else entirely", 7}, add{"something else entirely", 8},
		), [][2]int{{0, settled}}, [][2]int{{0, settled + 1}}, settled + 1, "disk sda failed"},
		{"a key's first lines are mined: what differs in them is a variable", 0, []add{
			{"request served in 5ms", 3}, {"request served in 7ms", 3},
		}, [][2]int{{0, 1}}, nil, 2, "request served in <*>"},
		{"key 0 is Add", 0, []add{
			{"disk sda failed", 0}, {"something else entirely", 0}, {"disk sda failed", 0},
		}, [][2]int{{0, 2}}, [][2]int{{0, 1}}, 2, ""},
		{"an evicted pattern's key is mined again", 1, []add{
			{"alpha beta gamma", 1}, {"delta epsilon zeta", 2}, {"alpha beta gamma", 1},
		}, nil, [][2]int{{0, 2}}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Config{MaxPatterns: tc.maxPats})
			got := make([]*Pattern, len(tc.adds))
			for i, a := range tc.adds {
				got[i], _ = m.AddKeyed([]byte(a.line), a.key)
			}
			checkPairs(t, "pattern", got, tc.samePat, tc.otherPat)
			if got[0].Count != tc.count {
				t.Errorf("count %d, want %d", got[0].Count, tc.count)
			}
			if tc.want != "" && got[0].String() != tc.want {
				t.Errorf("pattern %q, want %q", got[0], tc.want)
			}
		})
	}
}

// checkPairs checks that the pairs same of got are equal, and other's not.
func checkPairs[T comparable](t *testing.T, what string, got []T, same, other [][2]int) {
	t.Helper()
	for _, p := range same {
		if got[p[0]] != got[p[1]] {
			t.Errorf("%d and %d: %s %v and %v, want one", p[0], p[1], what, got[p[0]], got[p[1]])
		}
	}
	for _, p := range other {
		if got[p[0]] == got[p[1]] {
			t.Errorf("%d and %d share %s %v", p[0], p[1], what, got[p[0]])
		}
	}
}

// TestAddKeyedMemoIsBounded feeds more keys than the memo holds.
func TestAddKeyedMemoIsBounded(t *testing.T) {
	m := New(Config{MaxPatterns: 10})
	for i := range uint64(1000) {
		m.AddKeyed([]byte("request served in 12 ms"), i+1)
		if len(m.byKey) > memoFactor*10 {
			t.Fatalf("%d keys remembered, want at most %d", len(m.byKey), memoFactor*10)
		}
	}
	if ps := m.Patterns(); len(ps) != 1 || ps[0].Count != 1000 {
		t.Errorf("patterns %v, want one of 1000 lines", ps)
	}
}

// TestFrozen: a miner's patterns, stored and read back, tell how near a
// line is to the lines mined, without filing it.
func TestFrozen(t *testing.T) {
	m := New(Config{})
	for i := range 20 {
		m.Add(fmt.Sprintf("request %d failed after %d ms", i, i*7))
		m.Add(fmt.Sprintf("session opened for user %c%c from 10.0.0.%d", 'a'+i%5, 'a'+i%3, i))
	}
	m.Add("disk full on /var/log")
	texts := m.Frozen(10)
	if len(texts) != 3 || texts[2] != "disk full on <*>" {
		t.Fatalf("frozen %q", texts)
	}
	if again := m.Frozen(2); !slices.Equal(again, texts[:2]) {
		t.Fatalf("frozen %q, then the first two %q", texts, again)
	}
	f, err := FromFrozen(Config{}, texts)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string
		want float64
	}{
		{"request 991 failed after 12 ms", 1},
		{"request 991 failed before 12 ms", 2.0 / 3}, // 2 of 3 constants
		{"session opened for user zed from 10.1.1.1", 1},
		{"disk full on /home/x", 1},
		{"kernel panic", 0}, // no pattern of its length and start
	}
	for _, tc := range tests {
		if got := f.Nearest(tc.line); got != tc.want {
			t.Errorf("Nearest(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
	if n := len(f.Frozen(10)); n != 3 {
		t.Fatalf("Nearest filed lines: %d patterns", n)
	}
	// The longest lines' patterns read back: values and delimiters with
	// no space between them come back spaced.
	for _, long := range []string{strings.Repeat(strings.Repeat("a", 63)+",", 64), strings.Repeat("k=1,", 2000), strings.Repeat("x", 5000)} {
		m := New(Config{})
		m.Add(long)
		if _, err := FromFrozen(Config{}, m.Frozen(1)); err != nil {
			t.Errorf("the pattern of a %d-byte line: %v", len(long), err)
		}
	}
	for _, bad := range [][]string{{"a  b"}, {" a"}, {strings.Repeat("x ", 200) + "x"}, {strings.Repeat("x", 5000)}} {
		if _, err := FromFrozen(Config{}, bad); err == nil {
			t.Errorf("FromFrozen(%.40q) took it", bad[0])
		}
	}
}

// TestKinds: a position where a pattern's lines hold a few words tells
// kinds of the event apart; numbers, and four words or more, are values
// (read once all lines are mined).
func TestKinds(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		same  [][2]int // lines of one kind
		other [][2]int // lines of other kinds
	}{
		{"states", []string{
			"480082 gige7 gige temperature 1146100398 1 critical", "465923 gige7 gige temperature 1145638393 1 warning",
			"465931 gige7 gige temperature 1145638401 1 normal", "480090 gige7 gige temperature 1146100406 1 critical",
		}, [][2]int{{0, 3}}, [][2]int{{1, 3}, {2, 3}, {1, 2}}},
		{"numbers are values", []string{"request 5 failed at step 2", "request 7 failed at step 9"}, [][2]int{{0, 1}}, nil},
		{"four words or more are values", []string{
			"session opened for user alice", "session opened for user bob", "session opened for user carol",
			"session opened for user dave", "session opened for user erin",
		}, [][2]int{{0, 1}, {3, 4}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Config{})
			ps := make([]*Pattern, len(tc.lines))
			kinds := make([]uint64, len(tc.lines))
			for i, l := range tc.lines {
				ps[i] = m.Add(l)
			}
			for i, l := range tc.lines {
				kinds[i] = m.Kind(ps[i], l)
			}
			for i := range ps {
				if ps[i] != ps[0] {
					t.Fatalf("line %d in pattern %q, not %q", i, ps[i], ps[0])
				}
			}
			checkPairs(t, "kind", kinds, tc.same, tc.other)
		})
	}
}

func TestVariable(t *testing.T) {
	tests := map[string]bool{
		"42": true, "0x1f": true, "10.0.0.1": true, "12:30:01": true, "node-129": true, "blk_-42": true,
		"3f2a9c1b7e": true, "/var/log/app.log": true, "http://x": true, "Mon": true, "Jul": true, "\xff": true,
		"SOCKS5": false, "ee0": false, "error": false, "HTTPS": false, "a.b": false,
	}
	for tok, want := range tests {
		if got := variable(tok); got != want {
			t.Errorf("variable(%q) = %v, want %v", tok, got, want)
		}
	}
}

// After many lines agree on a constant, another word there is another
// event, not another value.
func TestSettledConstantsSplit(t *testing.T) {
	m := New(Config{})
	var agent *Pattern
	for i := 0; i < 20; i++ {
		agent = m.Add(fmt.Sprintf("Session: 3016094_%d initialized by client WindowsUpdateAgent.", i))
	}
	spp := m.Add("Session: 3016094_99 initialized by client SPP.")
	if Key(agent) == Key(spp) {
		t.Fatalf("SPP joined %q", agent)
	}
	if got := agent.String(); got != "Session: <*> initialized by client WindowsUpdateAgent." {
		t.Errorf("pattern %q", got)
	}
}

// unseenSystem is a stream of a system not in ../shared, written for the
// tests: its lines, and each line's event.
type unseenSystem struct{ lines, events []string }

func (u *unseenSystem) add(event, line string) {
	u.lines, u.events = append(u.lines, line), append(u.events, event)
}

// sshdStream is an SSH server's events behind a syslog header: brute-force
// runs repeat one user name for many lines, which must not settle it as a
// constant.
func sshdStream(rng *rand.Rand) unseenSystem {
	users := []string{"admin", "test", "oracle", "guest", "webmaster", "support", "ftpuser", "pi", "ubuntu", "git"}
	hosts := []string{"ns.example-bad.com", "static.vnpt.vn", "ec2-52-80-34-196.cn-north-1.compute.amazonaws.com.cn"}
	ip := func() string {
		return fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), rng.IntN(256))
	}
	port := func() int { return 30000 + rng.IntN(30000) }
	var u unseenSystem
	add := func(event, line string) {
		u.add(event, fmt.Sprintf("Dec %2d %02d:%02d:%02d LabSZ sshd[%d]: %s", 1+len(u.lines)/500, rng.IntN(24), rng.IntN(60), rng.IntN(60), 20000+rng.IntN(9000), line))
	}
	for len(u.lines) < 2000 {
		user, a, n := users[rng.IntN(len(users))], ip(), 1+rng.IntN(12)
		switch rng.IntN(5) {
		case 0: // an invalid user's attempts
			for range n {
				add("invalid", "Invalid user "+user+" from "+a)
				add("userauth", "input_userauth_request: invalid user "+user+" [preauth]")
				add("checkpass", "pam_unix(sshd:auth): check pass; user unknown")
				add("authfail", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost="+hosts[rng.IntN(len(hosts))])
				add("failedinvalid", fmt.Sprintf("Failed password for invalid user %s from %s port %d ssh2", user, a, port()))
				add("bye", "Received disconnect from "+a+": 11: Bye Bye [preauth]")
			}
		case 1: // root, many times over
			for range 3 * n {
				add("authfailuser", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost="+a+"  user=root")
				add("failed", fmt.Sprintf("Failed password for root from %s port %d ssh2", a, port()))
			}
		case 2:
			add("failed", fmt.Sprintf("Failed password for %s from %s port %d ssh2", user, a, port()))
			add("accepted", fmt.Sprintf("Accepted password for %s from %s port %d ssh2", user, a, port()))
			add("session", "pam_unix(sshd:session): session opened for user "+user+" by (uid=0)")
		case 3:
			add("closed", "Connection closed by "+a+" [preauth]")
			add("noident", "Did not receive identification string from "+a)
		case 4:
			add("reverse", fmt.Sprintf("reverse mapping checking getaddrinfo for %s [%s] failed - POSSIBLE BREAK-IN ATTEMPT!", hosts[rng.IntN(len(hosts))], a))
			add("repeated", fmt.Sprintf("message repeated %d times: [ Failed password for %s from %s port %d ssh2]", 2+rng.IntN(4), user, a, port()))
		}
	}
	return u
}

// rasStream is a supercomputer's RAS events behind their header (a time,
// a date, the node's location twice, a stamp, and the facility and
// severity): short messages, whose header's shared variables must not
// make them alike.
func rasStream(rng *rand.Rand) unseenSystem {
	events := []struct {
		level, text string
		args        func() []any
	}{
		{"INFO", "instruction cache parity error corrected", func() []any { return nil }},
		{"INFO", "%d double-hummer alignment exceptions", func() []any { return []any{rng.IntN(9999)} }},
		{"INFO", "CE sym %d, at 0x%08x, mask 0x%02x", func() []any { return []any{rng.IntN(40), rng.Uint32(), rng.IntN(256)} }},
		{"INFO", "generating core.%d", func() []any { return []any{rng.IntN(9999)} }},
		{"INFO", "total of %d ddr error(s) detected and corrected", func() []any { return []any{rng.IntN(30)} }},
		{"FATAL", "ciod: failed to read message prefix on control stream (CioStream socket to 172.16.%d.%d:%d", func() []any { return []any{rng.IntN(255), rng.IntN(255), 30000 + rng.IntN(9999)} }},
		{"FATAL", "data TLB error interrupt", func() []any { return nil }},
		{"FATAL", "machine check interrupt", func() []any { return nil }},
		{"FATAL", "program interrupt", func() []any { return nil }},
		{"FAILURE", "NFS Mount failed on bglio%d, slept %d seconds, retrying (%d)", func() []any { return []any{rng.IntN(64), rng.IntN(60), rng.IntN(9)} }},
		{"FATAL", "rts: kernel terminated for reason %d", func() []any { return []any{1000 + rng.IntN(8)} }},
		{"WARNING", "ddr: excessive soft failures, consider replacing the card", func() []any { return nil }},
		{"FATAL", "iar %08x dear %08x", func() []any { return []any{rng.Uint32(), rng.Uint32()} }},
	}
	var u unseenSystem
	for len(u.lines) < 2000 {
		e := rng.IntN(len(events))
		for range 1 + rng.IntN(6) {
			loc := fmt.Sprintf("R%02d-M%d-N%d-C:J%02d-U%02d", rng.IntN(80), rng.IntN(2), rng.IntN(16), rng.IntN(18), rng.IntN(12))
			u.add(fmt.Sprint(e), fmt.Sprintf("- %d 2005.06.03 %s 2005-06-03-15.42.%02d.%06d %s RAS KERNEL %s %s",
				1117838570+len(u.lines), loc, rng.IntN(60), rng.IntN(999999), loc, events[e].level, fmt.Sprintf(events[e].text, events[e].args()...)))
		}
	}
	return u
}

// TestMinerOnUnseenSystems groups the streams of two systems that are not
// in ../shared; every line's group must be exactly its event's lines.
func TestMinerOnUnseenSystems(t *testing.T) {
	for name, stream := range map[string]func(*rand.Rand) unseenSystem{"sshd": sshdStream, "ras": rasStream} {
		t.Run(name, func(t *testing.T) {
			u := stream(rand.New(rand.NewPCG(1, 2)))
			m := New(Config{})
			joined := make([]*Pattern, len(u.lines))
			for i, l := range u.lines {
				joined[i] = m.Add(l)
			}
			byKey, byEvent := map[string]map[string]int{}, map[string]int{}
			for i, p := range joined {
				k := Key(p)
				if byKey[k] == nil {
					byKey[k] = map[string]int{}
				}
				byKey[k][u.events[i]]++
				byEvent[u.events[i]]++
			}
			right := 0
			for _, evs := range byKey {
				for e, n := range evs {
					if len(evs) == 1 && n == byEvent[e] {
						right += n
					}
				}
			}
			if right != len(u.lines) {
				t.Errorf("%d of %d lines grouped right, in %d groups for %d events", right, len(u.lines), len(byKey), len(byEvent))
			}
		})
	}
}

func TestMinerIsBoundedAndDeterministic(t *testing.T) {
	run := func() []*Pattern {
		m := New(Config{MaxPatterns: 100})
		for i := 0; i < 5000; i++ {
			m.Add(fmt.Sprintf("event%c%c happened to w%c", 'a'+i%26, 'a'+(i/26)%26, 'a'+(i/676)%26))
		}
		if m.Evicted() == 0 {
			t.Error("nothing evicted past MaxPatterns")
		}
		return m.Patterns()
	}
	a, b := run(), run()
	if len(a) > 100 || len(a) != len(b) {
		t.Fatalf("%d and %d patterns, want at most 100 each", len(a), len(b))
	}
	for i := range a {
		if a[i].String() != b[i].String() || a[i].Count != b[i].Count {
			t.Fatalf("pattern %d differs between runs: %q %q", i, a[i], b[i])
		}
	}
}

func TestHostileLines(t *testing.T) {
	m := New(Config{})
	for _, l := range []string{
		strings.Repeat("x", 1<<20),
		strings.Repeat("a ", 1<<19),
		"\x00\x01\xff\xfe binary \xc3\x28",
		"",
		strings.Repeat("=", 10000),
	} {
		p := m.Add(l)
		if len(p.Tokens) > 128 || len(p.String()) > 8192 {
			t.Errorf("pattern of %d tokens, %d bytes", len(p.Tokens), len(p.String()))
		}
	}
}

func FuzzMiner(f *testing.F) {
	f.Add("Received block blk_1 of size 67 from /10.0.0.1", "Received block blk_2 of size 9 from /10.0.0.2")
	f.Add("a=1, b=\"x\"", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		m := New(Config{MaxPatterns: 4})
		pa, pb := m.Add(a), m.Add(b)
		if len(pa.Tokens) > 128 || len(pb.Tokens) > 128 {
			t.Fatal("token bound exceeded")
		}
		if a == b && Key(pa) != Key(pb) {
			t.Fatalf("equal lines in different patterns: %q", a)
		}
		var ka *Pattern
		for range settled {
			ka, _ = m.AddKeyed([]byte(a), 1)
		}
		if kb, _ := m.AddKeyed([]byte(b), 1); ka != kb || ka.Count < settled+1 {
			t.Fatalf("one settled key, patterns %q and %q", ka, kb)
		}
		_ = m.Patterns()
		if a == b && m.Kind(pa, a) != m.Kind(pb, b) {
			t.Fatalf("equal lines of other kinds: %q", a)
		}
		_ = m.Kind(pb, a) // another pattern's line: no panic
		f, err := FromFrozen(Config{}, m.Frozen(4))
		if err != nil {
			t.Fatalf("frozen patterns refused: %v", err)
		}
		if n := f.Nearest(a); n < 0 || n > 1 {
			t.Fatalf("Nearest(%q) = %v", a, n)
		}
	})
}

// FuzzFrozen reads hostile stored patterns (one per line of text): refused
// or usable, never a panic.
func FuzzFrozen(f *testing.F) {
	f.Add("request <*> failed\ndisk full on <*>", "request 7 failed")
	f.Add("a  b", "")
	f.Fuzz(func(t *testing.T, stored, line string) {
		m, err := FromFrozen(Config{MaxTokens: 16, MaxLineBytes: 256}, strings.Split(stored, "\n"))
		if err != nil {
			return
		}
		if n := m.Nearest(line); n < 0 || n > 1 {
			t.Fatalf("Nearest(%q) = %v", line, n)
		}
	})
}

// BenchmarkMiner: lines of a few dozen templates with varying values, as a
// log is; and unique lines, the worst case, bounded by MaxPatterns.
func BenchmarkMiner(b *testing.B) {
	forms := []string{
		"Received block blk_%d of size %d from /10.250.%d.6",
		"connection from 217.187.%d.50 () at Mon Jul 25 23:24:%d 2005",
		"acquire lock=%d, flags=0x1, tag=\"AudioMix\", uid=%d",
		"proxy.cse.cuhk.edu.hk:5070 close, %d bytes (1.16 KB) sent, %d bytes received, lifetime 00:%d",
	}
	b.Run("templates", func(b *testing.B) {
		m := New(Config{})
		for i := 0; i < b.N; i++ {
			m.Add(fmt.Sprintf(forms[i%len(forms)], i, i*7, i%256))
		}
	})
	b.Run("unique", func(b *testing.B) {
		m := New(Config{})
		for i := 0; i < b.N; i++ {
			m.Add(fmt.Sprintf("event%c%c%c happened to w%c in zone%c", 'a'+i%26, 'a'+(i/26)%26, 'a'+(i/676)%26, 'a'+(i/17576)%26, 'a'+i%7))
		}
		b.ReportMetric(float64(m.Evicted()), "evicted")
	})
}
