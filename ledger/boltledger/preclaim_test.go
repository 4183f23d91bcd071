package boltledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// markClaim claims a step when its attempts are below limit, recording in
// the claim the attempts it decided on: a pure function of the record.
func markClaim(limit int) pipeline.ClaimFunc {
	return func(succ pipeline.StepRun) (pipeline.StepRun, bool) {
		if succ.Attempts >= limit {
			return pipeline.StepRun{}, false
		}
		c := succ
		c.Status, c.Attempts = pipeline.StepRunning, succ.Attempts+1
		c.Error = fmt.Sprintf("decided on attempts=%d", succ.Attempts)
		return c, true
	}
}

// claimIn runs claimSteps for tasks in a transaction of its own.
func claimIn(t *testing.T, l *Ledger, tasks []pipeline.Task, claim pipeline.ClaimFunc, pre []preclaim) []pipeline.StepRun {
	t.Helper()
	var out []pipeline.StepRun
	if err := l.db.Update(func(tx *bbolt.Tx) error {
		var err error
		out, _, err = l.claimSteps(tx, tasks, claim, pre, nil, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func stepB(t *testing.T, l *Ledger, id string) pipeline.StepRun {
	t.Helper()
	s, err := l.GetSteps(context.Background(), id, "b")
	if err != nil {
		t.Fatal(err)
	}
	return s[0]
}

// A claim decided before the transaction is written only if the record it
// was decided on is still the stored one; otherwise the transaction decides
// on what it reads.
func TestPreclaimIsWrittenOnlyOnTheRecordItWasDecidedOn(t *testing.T) {
	ctx := context.Background()
	l := openCacheTest(t)
	createCacheRun(t, l, "p/k")
	tasks := []pipeline.Task{{Payload: pipeline.TaskPayload{RunID: "p/k", Step: "b"}}}
	claim := markClaim(3)

	// Unchanged: the decision made before is the one written.
	pre := l.preclaim(tasks, claim)
	if pre[0].cur == nil || !pre[0].ok {
		t.Fatalf("nothing decided before the transaction: %+v", pre[0])
	}
	out := claimIn(t, l, tasks, claim, pre)
	if len(out) != 1 || out[0].Error != "decided on attempts=0" || out[0].WriteID != pre[0].rec.WriteID {
		t.Fatalf("claimed %+v, want the claim decided before (write %s)", out, pre[0].rec.WriteID)
	}
	if got := stepB(t, l, "p/k"); got.Version != out[0].Version || got.WriteID != out[0].WriteID || got.Attempts != 1 {
		t.Fatalf("stored %+v, want the claim %+v", got, out[0])
	}

	// Changed after the decision: decided again on the stored record.
	pre = l.preclaim(tasks, claim)
	cur := stepB(t, l, "p/k")
	cur.Attempts = 2
	if _, err := l.UpdateStep(ctx, cur); err != nil {
		t.Fatal(err)
	}
	out = claimIn(t, l, tasks, claim, pre)
	if len(out) != 1 || out[0].Error != "decided on attempts=2" || out[0].WriteID == pre[0].rec.WriteID {
		t.Fatalf("claimed %+v: the stale decision was written", out)
	}
	if got := stepB(t, l, "p/k"); got.Attempts != 3 || got.Version != out[0].Version {
		t.Fatalf("stored %+v, want attempts 3 at version %d", got, out[0].Version)
	}

	// Declined before, and unchanged: nothing written.
	pre = l.preclaim(tasks, claim)
	before := stepB(t, l, "p/k")
	if pre[0].cur == nil || pre[0].ok {
		t.Fatalf("want a declined decision, got %+v", pre[0])
	}
	if out := claimIn(t, l, tasks, claim, pre); len(out) != 0 {
		t.Fatalf("declined step claimed: %+v", out)
	}
	if got := stepB(t, l, "p/k"); got.Version != before.Version {
		t.Fatalf("declined step written: version %d, was %d", got.Version, before.Version)
	}

	// Declined before, changed since to a record the claim accepts.
	pre = l.preclaim(tasks, claim)
	cur = stepB(t, l, "p/k")
	cur.Attempts = 0
	if _, err := l.UpdateStep(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if out := claimIn(t, l, tasks, claim, pre); len(out) != 1 || out[0].Error != "decided on attempts=0" {
		t.Fatalf("claimed %+v, want a claim decided on the stored record", out)
	}
}

// Randomized: whatever happens between the decision before the transaction
// and the transaction (nothing, or a write of the record), the transaction
// stores and returns what deciding inside it stores and returns.
func TestPreclaimMatchesDecidingInTheTransaction(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(16, 2))
	withPre, without := openCacheTest(t), openCacheTest(t)
	createCacheRun(t, withPre, "p/k")
	createCacheRun(t, without, "p/k")
	tasks := []pipeline.Task{{Payload: pipeline.TaskPayload{RunID: "p/k", Step: "b"}}, {Payload: pipeline.TaskPayload{RunID: "p/k", Step: "missing"}}}
	for round := range 200 {
		claim := markClaim(1 + rng.IntN(6))
		pre := withPre.preclaim(tasks, claim)
		if rng.IntN(2) == 0 { // a write between the decision and the transaction
			attempts := rng.IntN(6)
			for _, l := range []*Ledger{withPre, without} {
				cur := stepB(t, l, "p/k")
				cur.Attempts = attempts
				if _, err := l.UpdateStep(ctx, cur); err != nil {
					t.Fatal(err)
				}
			}
		}
		a, b := claimIn(t, withPre, tasks, claim, pre), claimIn(t, without, tasks, claim, nil)
		if len(a) != len(b) {
			t.Fatalf("round %d: %d claims with the decision made before, %d without", round, len(a), len(b))
		}
		for i := range a {
			a[i].WriteID, b[i].WriteID = "", ""
			if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
				t.Fatalf("round %d: claimed\n%+v\nwant\n%+v", round, a[i], b[i])
			}
		}
		sa, sb := stepB(t, withPre, "p/k"), stepB(t, without, "p/k")
		sa.WriteID, sb.WriteID = "", ""
		if fmt.Sprint(sa) != fmt.Sprint(sb) {
			t.Fatalf("round %d: stored\n%+v\nwant\n%+v", round, sa, sb)
		}
	}
}
