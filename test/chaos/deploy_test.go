package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	deployV1 = `name: chaos
time_zone: UTC
steps:
  - {name: a, kind: chaos, after: [], timeout: 5s, max_attempts: 10, chaos: {sleep: 10ms}}
  - {name: b, kind: chaos, after: [a], timeout: 5s, max_attempts: 10, chaos: {sleep: 1s}}
  - {name: c, kind: chaos, after: [b], timeout: 5s, max_attempts: 10, chaos: {sleep: 10ms}}
`
	// deployV2 removes c and adds d after b.
	deployV2 = `name: chaos
time_zone: UTC
steps:
  - {name: a, kind: chaos, after: [], timeout: 5s, max_attempts: 10, chaos: {sleep: 10ms}}
  - {name: b, kind: chaos, after: [a], timeout: 5s, max_attempts: 10, chaos: {sleep: 1s}}
  - {name: d, kind: chaos, after: [b], timeout: 5s, max_attempts: 10, chaos: {sleep: 10ms}}
`
)

// Scenario 7: a deploy mid-run. Runs start under a definition a→b→c; while
// their step b runs, the service is redeployed (stopped gracefully and
// started again on the same store) with c removed and d added. The runs in
// flight must finish under their own graph (bodies a, b, c; never d); runs
// started after the deploy follow the new one (a, b, d).
func TestDeployMidRun(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) { deployMidRun(t, backend, sz) })
	}
}

func deployMidRun(t *testing.T, backend string, sz size) {
	s := newStack(t, backend, deployV1, stackOptions{})
	f := figures{scenario: "deploy", backend: backend}
	var old, fresh []string
	for i := range sz.deployRuns {
		key := fmt.Sprintf("v1-%d", i)
		f.tried++
		if s.startRun(key) {
			old = append(old, "chaos@"+key)
		}
	}
	// Deploy while every old run's b is in flight.
	waitBodies(t, s, 2*time.Minute, func(bs []Body) bool {
		for _, id := range old {
			if startsOf(bs, id, "b") == 0 {
				return false
			}
		}
		return true
	})
	deployed := time.Now()
	s.restart(deployV2)
	for i := range sz.deployRuns {
		key := fmt.Sprintf("v2-%d", i)
		f.tried++
		if s.startRun(key) {
			fresh = append(fresh, "chaos@"+key)
		}
	}
	ids := append(slices.Clone(old), fresh...)
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	f.recovery = time.Since(deployed)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems := tally(t, &f, ids, views, bodies, nil, nil)
	wrong := 0
	for _, group := range []struct {
		ids  []string
		want string
	}{{old, "a,b,c"}, {fresh, "a,b,d"}} {
		for _, id := range group.ids {
			if got := stepsRun(bodies, id); got != group.want {
				wrong++
				problems = append(problems, fmt.Sprintf("run %s ran bodies %s, want %s", id, got, group.want))
			}
		}
	}
	f.add("runs in flight at the deploy %d", len(old))
	f.add("wrong graph %d", wrong)
	check(t, f, problems)
	if wrong > 0 {
		t.Errorf("%d run(s) did not follow the graph they started with", wrong)
	}
}

// stepsRun lists the steps of run whose body completed, sorted.
func stepsRun(bodies []Body, run string) string {
	set := map[string]bool{}
	for _, b := range bodies {
		if b.Event == "end" && b.RunID == run {
			set[b.Step] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
