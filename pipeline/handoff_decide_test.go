package pipeline

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var allStepStatuses = []StepStatus{StepPending, StepRunning, StepRetrying, StepWaiting, StepSucceeded, StepFailed, StepCancelled, StepSkipped}

func TestHandOffClaimTable(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	pred := StepRun{RunID: "r", Step: "a", Status: StepSucceeded, Generation: 1, Attempts: 1, MaxAttempts: 3}
	pending := StepRun{RunID: "r", Step: "b", Status: StepPending, Generation: 1, MaxAttempts: 3}
	with := func(f func(*StepRun)) StepRun { s := pending; f(&s); return s }
	cases := []struct {
		name string
		pred StepRun
		succ StepRun
		gen  int
		want bool
	}{
		{"pending successor of a succeeded step", pred, pending, 1, true},
		{"released (retrying, no attempt counted)", pred, with(func(s *StepRun) { s.Status = StepRetrying }), 1, true},
		{"retrying after a counted attempt: its delivery reads the run first", pred, with(func(s *StepRun) { s.Status, s.Attempts = StepRetrying, 1 }), 1, false},
		{"already claimed", pred, with(func(s *StepRun) { s.Status, s.Attempts, s.LeaseUntil = StepRunning, 1, now.Add(time.Minute) }), 1, false},
		{"running, lease expired: a take-over is the delivery's", pred, with(func(s *StepRun) { s.Status, s.Attempts, s.LeaseUntil = StepRunning, 1, now.Add(-time.Minute) }), 1, false},
		{"succeeded", pred, with(func(s *StepRun) { s.Status, s.Attempts = StepSucceeded, 1 }), 1, false},
		{"waiting", pred, with(func(s *StepRun) { s.Status, s.Attempts = StepWaiting, 1 }), 1, false},
		{"cancelled", pred, with(func(s *StepRun) { s.Status = StepCancelled }), 1, false},
		{"skipped", pred, with(func(s *StepRun) { s.Status = StepSkipped }), 1, false},
		{"failed", pred, with(func(s *StepRun) { s.Status = StepFailed }), 1, false},
		{"re-run generation", pred, with(func(s *StepRun) { s.Generation = 2 }), 2, false},
		{"task generation differs from the step's", pred, pending, 2, false},
		{"a single attempt is never spent by a hand-off", pred, with(func(s *StepRun) { s.MaxAttempts = 1 }), 1, false},
		{"predecessor not succeeded", with(func(s *StepRun) { *s = pred; s.Status = StepRunning }), pending, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := handOffClaim(handOff{Pred: c.pred, Succ: c.succ, Gen: c.gen, Now: now, Lease: time.Minute})
			if ok != c.want {
				t.Fatalf("handOffClaim = %t, want %t", ok, c.want)
			}
			if !ok {
				return
			}
			if got.Status != StepRunning || got.Attempts != c.succ.Attempts+1 || !got.LeaseUntil.Equal(now.Add(time.Minute)) ||
				!got.StartedAt.Equal(now) || got.Inputs["a"] != 1 || got.Version != c.succ.Version {
				t.Fatalf("claim %+v: want running, attempt %d, lease until %s, started now, input a@1, version kept", got, c.succ.Attempts+1, now.Add(time.Minute))
			}
		})
	}
}

// TestHandOffClaimAgreesWithDecide: over random recorded states, a hand-off
// claims exactly when the successor's own delivery would claim at once
// (decide: actClaim, not a take-over, without reading the run) with more
// than one attempt to give, and it writes the record that delivery's claim
// would write.
func TestHandOffClaimAgreesWithDecide(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2))
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	pick := func(n int) int { return rng.IntN(n) }
	claims := 0
	for i := range 20000 {
		pred := StepRun{RunID: "r", Step: "a", Status: allStepStatuses[pick(len(allStepStatuses))], Generation: 1 + pick(2), Attempts: pick(3), MaxAttempts: 3}
		succ := StepRun{RunID: "r", Step: "b", Status: allStepStatuses[pick(len(allStepStatuses))], Generation: 1 + pick(2),
			Attempts: pick(3), MaxAttempts: 1 + pick(3), Forced: pick(4) == 0, Version: int64(pick(100))}
		if pick(2) == 0 {
			succ.Status, succ.Attempts = StepPending, 0
		}
		if pick(2) == 0 {
			pred.Status = StepSucceeded
		}
		switch pick(3) {
		case 0:
			succ.LeaseUntil = now.Add(time.Minute)
		case 1:
			succ.LeaseUntil = now.Add(-time.Minute)
		}
		gen := 1 + pick(2)
		lease := time.Duration(1+pick(60)) * time.Second
		got, ok := handOffClaim(handOff{Pred: pred, Succ: succ, Gen: gen, Now: now, Lease: lease})

		st := stepState{Generation: gen, Cur: succ, Preds: []StepRun{pred}, Now: now}
		dec := decide(st)
		want := dec.Act == actClaim && !dec.TakeOver && !dec.Restart && succ.MaxAttempts > 1 && pred.Status == StepSucceeded
		if ok != want {
			t.Fatalf("case %d: pred %+v succ %+v gen %d: hand-off claims=%t, decide %+v", i, pred, succ, gen, ok, dec)
		}
		if !ok {
			continue
		}
		claims++
		if wantRec := claimRecord(succ, st.Preds, false, now, lease); !reflect.DeepEqual(got, wantRec) {
			t.Fatalf("case %d: claim %+v, the delivery's claim would be %+v", i, got, wantRec)
		}
	}
	if claims < 500 {
		t.Fatalf("only %d of the cases claimed: the generator misses the claiming region", claims)
	}
}
