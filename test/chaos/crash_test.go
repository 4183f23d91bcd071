package chaos

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// Scenario 2: crashes. The pipeline binary is killed with SIGKILL at random
// moments while runs of a chain with a fan-out and a fan-in are in flight,
// and restarted on the same store each time. Every run must finish; a body
// may run again only if it was in flight in a killed process.
func TestCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) { crashes(t, backend, sz) })
	}
}

func crashes(t *testing.T, backend string, sz size) {
	yaml := `name: chaos
time_zone: UTC
steps:
  - {name: a, kind: chaos, after: [], timeout: 2s, max_attempts: 20, chaos: {sleep: 150ms}}
  - {name: b, kind: chaos, after: [a], timeout: 2s, max_attempts: 20, chaos: {sleep: 300ms}}
  - {name: c, kind: chaos, after: [a], timeout: 2s, max_attempts: 20, chaos: {sleep: 100ms}}
  - {name: d, kind: chaos, after: [b, c], timeout: 2s, max_attempts: 20, chaos: {sleep: 150ms}}
`
	s := newStack(t, backend, yaml, stackOptions{binary: true, leaseGrace: time.Second})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	f := figures{scenario: "crashes", backend: backend}
	var ids []string
	perKill := max(1, sz.crashRuns/sz.crashKills)
	next := 0
	for k := range sz.crashKills {
		for i := 0; i < perKill && next < sz.crashRuns; i++ {
			key := fmt.Sprintf("crash-%d", next)
			next++
			f.tried++
			if s.startRun(key) {
				ids = append(ids, "chaos@"+key)
			}
		}
		if k == sz.crashKills-1 {
			for ; next < sz.crashRuns; next++ {
				key := fmt.Sprintf("crash-%d", next)
				f.tried++
				if s.startRun(key) {
					ids = append(ids, "chaos@"+key)
				}
			}
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond) // a random moment, not a synchronisation
		s.signal(syscall.SIGKILL)
		s.start()
	}
	restarted := time.Now()
	views := waitRuns(ids, 3*time.Minute, s.getRun)
	f.recovery = time.Since(restarted)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, s.interrupted, nil)
	again := 0
	starts := map[string]int{}
	for _, b := range bodies {
		if b.Event == "start" {
			starts[b.RunID+"|"+b.Step]++
			if starts[b.RunID+"|"+b.Step] > 1 {
				again++
			}
		}
	}
	f.add("kills %d", sz.crashKills)
	f.add("bodies %d", len(starts)+again)
	f.add("re-run after a kill %d", again)
	check(t, f, problems)
}
