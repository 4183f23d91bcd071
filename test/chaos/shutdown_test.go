package chaos

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// Scenario 3: graceful shutdown. SIGTERM reaches `serve` while a long step and
// short steps are in flight. The process must exit (Cloud Run sends SIGKILL
// 10 s after SIGTERM; the time is reported), the interrupted long step must be
// released at once so that the restarted service takes it over before its
// lease would have expired, and the run must finish.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and signals the binary")
	}
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) { gracefulShutdown(t, backend, sz) })
	}
}

const (
	longTimeout   = 20 * time.Second
	shutdownGrace = 10 * time.Second
)

func gracefulShutdown(t *testing.T, backend string, sz size) {
	yaml := fmt.Sprintf(`name: chaos
time_zone: UTC
steps:
  - {name: a, kind: chaos, after: [], timeout: 5s, chaos: {sleep: 10ms}}
  - {name: long, kind: chaos, after: [a], timeout: %s, max_attempts: 3, chaos: {sleep: 5s}}
  - {name: s1, kind: chaos, after: [a], timeout: 5s, chaos: {sleep: 1500ms}}
  - {name: s2, kind: chaos, after: [a], timeout: 5s, chaos: {sleep: 1500ms}}
  - {name: z, kind: chaos, after: [long, s1, s2], timeout: 5s, chaos: {sleep: 10ms}}
`, longTimeout)
	s := newStack(t, backend, yaml, stackOptions{binary: true, leaseGrace: shutdownGrace})
	f := figures{scenario: "shutdown", backend: backend}
	var ids []string
	var exits, takeovers []time.Duration
	for i := range sz.shutdowns {
		key := fmt.Sprintf("term-%d", i)
		id := "chaos@" + key
		f.tried++
		if !s.startRun(key) {
			continue
		}
		ids = append(ids, id)
		// Wait (on the body log) until the long step and both short ones run.
		before := countStarts(t, s, id, "long")
		waitBodies(t, s, 60*time.Second, func(bs []Body) bool {
			return startsOf(bs, id, "long") > before && startsOf(bs, id, "s1") > 0 && startsOf(bs, id, "s2") > 0
		})
		term := time.Now()
		exits = append(exits, s.signal(syscall.SIGTERM))
		s.start()
		// The restarted service must take the long step over before its lease
		// (timeout + grace, from its start) would have expired: only a lease
		// released at shutdown allows that.
		expiry := term.Add(longTimeout + shutdownGrace)
		took, ok := pollBodies(t, s, time.Until(expiry)+30*time.Second, func(bs []Body) bool {
			return startsOf(bs, id, "long") > before+1
		})
		if !ok {
			_, body, _ := s.do("GET", "/pipeline/runs/"+id, schedulerSA, nil, nil)
			t.Fatalf("%s: the restarted service never took the interrupted step over: %s", id, body)
		}
		takeovers = append(takeovers, took.Sub(term))
		if took.After(expiry) {
			t.Errorf("%s: the restarted service took the interrupted step over %.1fs after SIGTERM, only once its lease expired: the lease was not released at shutdown",
				id, took.Sub(term).Seconds())
		}
	}
	began := time.Now()
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	f.recovery = time.Since(began)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, s.interrupted, nil)
	f.add("exit after SIGTERM max %.1fs", maxDur(exits).Seconds())
	f.add("take-over after SIGTERM max %.1fs", maxDur(takeovers).Seconds())
	check(t, f, problems)
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func startsOf(bs []Body, run, step string) int {
	n := 0
	for _, b := range bs {
		if b.Event == "start" && b.RunID == run && b.Step == step {
			n++
		}
	}
	return n
}

func countStarts(t *testing.T, s *stack, run, step string) int {
	t.Helper()
	bs, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	return startsOf(bs, run, step)
}

// waitBodies polls the body log until cond holds and returns when it first
// saw it; it fails the test after within.
func waitBodies(t *testing.T, s *stack, within time.Duration, cond func([]Body) bool) time.Time {
	t.Helper()
	at, ok := pollBodies(t, s, within, cond)
	if !ok {
		t.Fatalf("body log: condition not met within %s", within)
	}
	return at
}

// pollBodies polls the body log until cond holds (true, and when it first saw
// it) or within passes (false).
func pollBodies(t *testing.T, s *stack, within time.Duration, cond func([]Body) bool) (time.Time, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		bs, err := ReadBodies(s.bodyLog())
		if err != nil {
			t.Fatal(err)
		}
		if cond(bs) {
			return time.Now(), true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
