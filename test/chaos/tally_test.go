package chaos

import (
	"fmt"
	"sort"
	"testing"
)

// tally fills f's completed, lost, doubled and stuck from the runs the
// service acknowledged (ids), their last views and the body log.
//
//   - lost: an acknowledged run the ledger does not know, or a step the
//     ledger says succeeded whose body never completed;
//   - stuck: a run not terminal at the end of the wait;
//   - doubled: a body that started again although its previous start
//     completed in a process that was not killed or stopped afterwards
//     (interrupted: the pids in interrupted), beyond the re-runs a scenario
//     provokes on purpose (allowed, by "run|step");
//   - completed: runs that succeeded.
//
// It returns human-readable details of every problem found.
func tally(t *testing.T, f *figures, ids []string, views map[string]runView, bodies []Body, interrupted map[int]bool, allowed map[string]int) []string {
	t.Helper()
	var problems []string
	type key struct{ run, step string }
	type startRec struct {
		b     Body
		ended bool
	}
	// An end belongs to the latest start before it of the same run, step,
	// attempt and process (attempts count from 1 again in a new
	// generation, so the same key may start more than once).
	endKey := func(b Body) string { return fmt.Sprintf("%s|%s|%d|%d", b.RunID, b.Step, b.Attempt, b.PID) }
	ordered := append([]Body(nil), bodies...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].At.Before(ordered[j].At) })
	starts := map[key][]startRec{}
	open := map[string]int{} // endKey -> index in starts[key] of its open start
	completed := map[key]bool{}
	for _, b := range ordered {
		k := key{b.RunID, b.Step}
		if b.Event == "start" {
			starts[k] = append(starts[k], startRec{b: b})
			open[endKey(b)] = len(starts[k]) - 1
			continue
		}
		completed[k] = true
		if i, ok := open[endKey(b)]; ok {
			starts[k][i].ended = true
			delete(open, endKey(b))
		}
	}
	for k, ss := range starts {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].b.At.Before(ss[j].b.At) })
		for i := 1; i < len(ss); i++ {
			prev := ss[i-1]
			if !prev.ended || interrupted[prev.b.PID] {
				continue
			}
			if allowed[k.run+"|"+k.step] > 0 {
				allowed[k.run+"|"+k.step]--
				continue
			}
			f.doubled++
			problems = append(problems, fmt.Sprintf("doubled: %s %s ran again (attempt %d pid %d) after a completed body (attempt %d pid %d)",
				k.run, k.step, ss[i].b.Attempt, ss[i].b.PID, prev.b.Attempt, prev.b.PID))
		}
	}
	for _, id := range ids {
		r, ok := views[id]
		switch {
		case !ok:
			f.lost++
			problems = append(problems, "lost: run "+id+" acknowledged but not in the ledger")
			continue
		case !r.terminal():
			f.stuck++
			problems = append(problems, fmt.Sprintf("stuck: run %s is %s: %+v", id, r.Status, r.Steps))
			continue
		case r.Status == "succeeded":
			f.completed++
		default:
			problems = append(problems, fmt.Sprintf("run %s ended %s: %s", id, r.Status, r.Error))
		}
		for _, s := range r.Steps {
			if s.Status == "succeeded" && !completed[key{id, s.Step}] {
				f.lost++
				problems = append(problems, fmt.Sprintf("lost: %s step %s succeeded without a completed body", id, s.Step))
			}
		}
	}
	return problems
}

// check reports the figures and, on failure, every problem found.
func check(t *testing.T, f figures, problems []string) {
	t.Helper()
	report(t, f)
	if f.completed != f.tried {
		t.Errorf("%s %s: %d of %d runs completed", f.scenario, f.backend, f.completed, f.tried)
	}
	if t.Failed() {
		for i, p := range problems {
			if i == 30 {
				t.Logf("… %d more", len(problems)-30)
				break
			}
			t.Log(p)
		}
	}
}
