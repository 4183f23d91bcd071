package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"
)

var decideNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestDecideTable(t *testing.T) {
	ok := StepRun{Step: "p", Status: StepSucceeded, Generation: 1}
	pending := StepRun{Step: "s", Status: StepPending, Generation: 1, MaxAttempts: 3}
	with := func(s StepRun, f func(*StepRun)) StepRun { f(&s); return s }
	running := &Run{Status: RunRunning}
	waiting := StepRun{Step: "s", Status: StepWaiting, Generation: 1, Attempts: 1, MaxAttempts: 3, Check: 2,
		WaitingSince: decideNow.Add(-time.Minute), AsyncState: []byte(`{}`)}
	cases := []struct {
		name  string
		state stepState
		want  action
		over  bool
	}{
		{"older generation", stepState{Generation: 1, Cur: with(pending, func(s *StepRun) { s.Generation = 2 })}, actStale, false},
		{"newer generation", stepState{Generation: 3, Cur: with(pending, func(s *StepRun) { s.Generation = 2 })}, actAhead, false},
		{"succeeded", stepState{Generation: 1, Cur: with(pending, func(s *StepRun) { s.Status = StepSucceeded })}, actAlreadyDone, false},
		{"failed", stepState{Generation: 1, Cur: with(pending, func(s *StepRun) { s.Status = StepFailed })}, actFinishFailed, false},
		{"cancelled", stepState{Generation: 1, Cur: with(pending, func(s *StepRun) { s.Status = StepCancelled })}, actNotRunnable, false},
		{"skipped", stepState{Generation: 1, Cur: with(pending, func(s *StepRun) { s.Status = StepSkipped })}, actNotRunnable, false},
		{"live lease", stepState{Generation: 1, Cur: with(pending, func(s *StepRun) {
			s.Status, s.Attempts, s.LeaseUntil = StepRunning, 1, decideNow.Add(time.Second)
		})}, actLeaseHeld, false},
		{"expired lease needs the run", stepState{Generation: 1, Cur: with(pending, func(s *StepRun) {
			s.Status, s.Attempts, s.LeaseUntil = StepRunning, 1, decideNow
		})}, actReadRun, false},
		{"expired lease, run running", stepState{Generation: 1, Run: running, Preds: []StepRun{ok}, Cur: with(pending, func(s *StepRun) {
			s.Status, s.Attempts, s.LeaseUntil = StepRunning, 1, decideNow
		})}, actClaim, true},
		{"expired lease of the last attempt", stepState{Generation: 1, Run: running, Cur: with(pending, func(s *StepRun) {
			s.Status, s.Attempts, s.MaxAttempts, s.LeaseUntil = StepRunning, 3, 3, decideNow.Add(-time.Hour)
		})}, actExhausted, false},
		{"first attempt reads no run", stepState{Generation: 1, Preds: []StepRun{ok}, Cur: pending}, actClaim, false},
		{"retry reads the run", stepState{Generation: 1, Cur: with(pending, func(s *StepRun) { s.Status, s.Attempts = StepRetrying, 1 })}, actReadRun, false},
		{"re-run reads the run", stepState{Generation: 2, Cur: with(pending, func(s *StepRun) { s.Generation = 2 })}, actReadRun, false},
		{"retry of a cancelled run", stepState{Generation: 1, Run: &Run{Status: RunCancelled}, Cur: with(pending, func(s *StepRun) { s.Status, s.Attempts = StepRetrying, 1 })}, actCancelStep, false},
		{"retry of a failed run", stepState{Generation: 1, Run: &Run{Status: RunFailed}, Cur: with(pending, func(s *StepRun) { s.Status, s.Attempts = StepRetrying, 1 })}, actRunEnded, false},
		{"retry of a pending run (launch crashed)", stepState{Generation: 1, Run: &Run{Status: RunPending}, Cur: with(pending, func(s *StepRun) { s.Status, s.Attempts = StepRetrying, 1 })}, actClaim, false},
		{"predecessor pending", stepState{Generation: 1, Preds: []StepRun{ok, {Step: "q", Status: StepRunning}}, Cur: pending}, actWait, false},
		{"predecessor failed", stepState{Generation: 1, Preds: []StepRun{{Step: "q", Status: StepFailed}}, Cur: pending}, actBlocked, false},
		{"succeeded on a superseded input", stepState{Generation: 1, Preds: []StepRun{with(ok, func(s *StepRun) { s.Generation = 2 })},
			Cur: with(pending, func(s *StepRun) { s.Status, s.Inputs = StepSucceeded, map[string]int{"p": 1} })}, actRerun, false},
		{"late task of a superseded step", stepState{Generation: 1, Preds: []StepRun{with(ok, func(s *StepRun) { s.Generation = 3 })},
			Cur: with(pending, func(s *StepRun) { s.Status, s.Generation, s.Inputs = StepSucceeded, 2, map[string]int{"p": 2} })}, actRerun, false},
		{"succeeded on the latest input", stepState{Generation: 1, Preds: []StepRun{with(ok, func(s *StepRun) { s.Generation = 2 })},
			Cur: with(pending, func(s *StepRun) { s.Status, s.Inputs = StepSucceeded, map[string]int{"p": 2} })}, actAlreadyDone, false},
		{"input superseded by an --only run", stepState{Generation: 1, Preds: []StepRun{with(ok, func(s *StepRun) { s.Generation, s.Only = 2, true })},
			Cur: with(pending, func(s *StepRun) { s.Status, s.Inputs = StepSucceeded, map[string]int{"p": 1} })}, actAlreadyDone, false},
		{"forced past a failed predecessor", stepState{Generation: 2, Run: running, Preds: []StepRun{{Step: "q", Status: StepFailed}},
			Cur: with(pending, func(s *StepRun) { s.Generation, s.Forced = 2, true })}, actClaim, false},

		// Asynchronous steps: the step's own task on a waiting step, and check tasks.
		{"start delivery of a waiting step", stepState{Generation: 1, Preds: []StepRun{ok}, Cur: waiting}, actRequeueCheck, false},
		{"due check reads the run", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Cur: waiting}, actReadRun, false},
		{"due check", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Run: running, Cur: waiting}, actCheck, false},
		{"due check, previous check's lease expired", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Run: running,
			Cur: with(waiting, func(s *StepRun) { s.LeaseUntil = decideNow })}, actCheck, true},
		{"due check while another holds its lease", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Run: running,
			Cur: with(waiting, func(s *StepRun) { s.LeaseUntil = decideNow.Add(time.Second) })}, actLeaseHeld, false},
		{"duplicate of an earlier check", stepState{Generation: 1, Check: 1, Timeout: time.Hour, Run: running, Cur: waiting}, actRequeueCheck, false},
		{"check ahead of the ledger", stepState{Generation: 1, Check: 3, Timeout: time.Hour, Run: running, Cur: waiting}, actAhead, false},
		{"check of an older generation", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Run: running,
			Cur: with(waiting, func(s *StepRun) { s.Generation = 2 })}, actStale, false},
		{"check past the timeout", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Run: running,
			Cur: with(waiting, func(s *StepRun) { s.WaitingSince = decideNow.Add(-time.Hour) })}, actCheck, false},
		{"check just before the timeout", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Run: running,
			Cur: with(waiting, func(s *StepRun) { s.WaitingSince = decideNow.Add(-time.Hour + time.Nanosecond) })}, actCheck, false},
		{"check of a cancelled run", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Run: &Run{Status: RunCancelled}, Cur: waiting}, actCancelStep, false},
		{"check of a failed run", stepState{Generation: 1, Check: 2, Timeout: time.Hour, Run: &Run{Status: RunFailed}, Cur: waiting}, actRunEnded, false},
		{"check after success", stepState{Generation: 1, Check: 2, Cur: with(waiting, func(s *StepRun) { s.Status = StepSucceeded })}, actAlreadyDone, false},
		{"check after failure", stepState{Generation: 1, Check: 2, Cur: with(waiting, func(s *StepRun) { s.Status = StepFailed })}, actFinishFailed, false},
		{"check after cancel", stepState{Generation: 1, Check: 2, Cur: with(waiting, func(s *StepRun) { s.Status = StepCancelled })}, actNotRunnable, false},
		{"check of an ended wait (a retry runs)", stepState{Generation: 1, Check: 2, Cur: with(waiting, func(s *StepRun) { s.Status = StepRetrying })}, actStale, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.state.Now = decideNow
			got := decide(tc.state)
			if got.Act != tc.want || got.TakeOver != tc.over {
				t.Fatalf("decide = %s (take-over %v), want %s (take-over %v)", got.Act, got.TakeOver, tc.want, tc.over)
			}
			// The check at (or past) the timeout is the last look.
			if wantLast := tc.name == "check past the timeout"; got.Last != wantLast {
				t.Fatalf("last = %v, want %v", got.Last, wantLast)
			}
			if (got.Act == actBlocked || got.Act == actWait) && got.Pred == nil {
				t.Fatal("no predecessor named")
			}
		})
	}
}

// An asynchronous step whose start was never recorded (its lease expired
// while running: the process died between Start and recording the state)
// starts again in the same attempt, whatever attempts are left, until the
// step's timeout counted from the attempt's start; a synchronous step's
// take-over stays a new attempt.
func TestDecideAsyncStartNeverRecorded(t *testing.T) {
	running := &Run{Status: RunRunning}
	lost := StepRun{Step: "s", Status: StepRunning, Generation: 1, Attempts: 1, MaxAttempts: 1,
		StartedAt: decideNow.Add(-10 * time.Minute), LeaseUntil: decideNow.Add(-time.Minute)}
	with := func(f func(*StepRun)) StepRun { s := lost; f(&s); return s }
	cases := []struct {
		name          string
		state         stepState
		want          action
		restart, over bool
	}{
		{"reads the run first", stepState{Async: true, Timeout: time.Hour, Cur: lost}, actReadRun, false, false},
		{"starts again in the same attempt", stepState{Async: true, Timeout: time.Hour, Run: running, Cur: lost}, actClaim, true, true},
		{"with attempts left too", stepState{Async: true, Timeout: time.Hour, Run: running, Cur: with(func(s *StepRun) { s.MaxAttempts = 3 })}, actClaim, true, true},
		{"not while the lease holds", stepState{Async: true, Timeout: time.Hour, Run: running, Cur: with(func(s *StepRun) { s.LeaseUntil = decideNow.Add(time.Second) })}, actLeaseHeld, false, false},
		{"past the timeout", stepState{Async: true, Timeout: 10 * time.Minute, Run: running, Cur: lost}, actStartTimeout, false, false},
		{"just before the timeout", stepState{Async: true, Timeout: 10*time.Minute + time.Nanosecond, Run: running, Cur: lost}, actClaim, true, true},
		{"cancelled run", stepState{Async: true, Timeout: time.Hour, Run: &Run{Status: RunCancelled}, Cur: lost}, actCancelStep, false, false},
		{"a synchronous step's last attempt", stepState{Timeout: time.Hour, Run: running, Cur: lost}, actExhausted, false, false},
		{"a synchronous step's take-over", stepState{Timeout: time.Hour, Run: running, Cur: with(func(s *StepRun) { s.MaxAttempts = 3 })}, actClaim, false, true},
		{"a retry after a recorded failure", stepState{Async: true, Timeout: time.Hour, Run: running, Cur: with(func(s *StepRun) { s.Status, s.MaxAttempts = StepRetrying, 3 })}, actClaim, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.state.Generation, tc.state.Now = 1, decideNow
			got := decide(tc.state)
			if got.Act != tc.want || got.Restart != tc.restart || got.TakeOver != tc.over {
				t.Fatalf("decide = %+v, want %s (restart %v, take-over %v)", got, tc.want, tc.restart, tc.over)
			}
		})
	}
}

// TestDecideRandomized checks decide's promises on random recorded states.
func TestDecideRandomized(t *testing.T) {
	stepStatuses := []StepStatus{StepPending, StepRunning, StepRetrying, StepSucceeded, StepFailed, StepCancelled, StepSkipped, StepWaiting}
	runStatuses := []RunStatus{RunPending, RunRunning, RunSucceeded, RunFailed, RunCancelled}
	for seed := range uint64(20000) {
		rnd := rand.New(rand.NewPCG(seed, 42))
		randStep := func(name string) StepRun {
			s := StepRun{Step: name, Status: stepStatuses[rnd.IntN(len(stepStatuses))], Generation: 1 + rnd.IntN(3),
				Attempts: rnd.IntN(4), MaxAttempts: 1 + rnd.IntN(3), Forced: rnd.IntN(4) == 0, Only: rnd.IntN(6) == 0}
			if rnd.IntN(4) > 0 {
				s.Inputs = map[string]int{}
				for _, p := range []string{"p", "q"} {
					s.Inputs[p] = rnd.IntN(4)
				}
			}
			if s.Status == StepRunning || (s.Status == StepWaiting && rnd.IntN(2) == 0) {
				s.LeaseUntil = decideNow.Add(time.Duration(rnd.IntN(3)-1) * time.Minute)
			}
			if s.Status == StepWaiting {
				s.Check = 1 + rnd.IntN(3)
				s.WaitingSince = decideNow.Add(-time.Duration(rnd.IntN(3)) * time.Hour)
			}
			return s
		}
		st := stepState{Generation: 1 + rnd.IntN(3), Cur: randStep("s"), Now: decideNow, Timeout: time.Duration(1+rnd.IntN(2)) * time.Hour,
			Async: rnd.IntN(2) == 0}
		if st.Cur.Attempts > 0 {
			st.Cur.StartedAt = decideNow.Add(-time.Duration(rnd.IntN(3)) * time.Hour)
		}
		if rnd.IntN(2) == 0 {
			st.Check = rnd.IntN(4)
		}
		for i := range rnd.IntN(3) {
			st.Preds = append(st.Preds, randStep(string(rune('p'+i))))
		}
		if rnd.IntN(2) == 0 {
			st.Run = &Run{Status: runStatuses[rnd.IntN(len(runStatuses))]}
		}
		d := decide(st)
		if again := decide(st); again != d {
			t.Fatalf("seed %d: not deterministic: %+v then %+v", seed, d, again)
		}
		cur := st.Cur
		if d.Act == actReadRun && st.Run != nil {
			t.Fatalf("seed %d: asks for the run it was given", seed)
		}
		// A succeeded step is re-run exactly when it consumed a superseded
		// input (and the task is not ahead of the ledger).
		if want := cur.Status == StepSucceeded && st.Generation <= cur.Generation && superseded(cur, st.Preds) != nil; (d.Act == actRerun) != want {
			t.Fatalf("seed %d: decide = %s for %+v with preds %+v", seed, d.Act, cur, st.Preds)
		}
		switch d.Act {
		case actCheck:
			// A check happens only for the due check of the current
			// generation's wait, outside another check's lease, in a run
			// that has not ended; it is the last look exactly when it comes
			// at or past the timeout.
			if st.Check == 0 || st.Check != cur.Check || cur.Status != StepWaiting || st.Generation != cur.Generation {
				t.Fatalf("seed %d: check %d of %+v for generation %d", seed, st.Check, cur, st.Generation)
			}
			if decideNow.Before(cur.LeaseUntil) {
				t.Fatalf("seed %d: check under a lease: %+v", seed, cur)
			}
			if d.Last != !decideNow.Before(cur.WaitingSince.Add(st.Timeout)) {
				t.Fatalf("seed %d: last %v for %+v (timeout %s)", seed, d.Last, cur, st.Timeout)
			}
			if st.Run == nil || st.Run.Status.Terminal() {
				t.Fatalf("seed %d: check without a live run: %+v", seed, st.Run)
			}
		case actStartTimeout:
			// Only an asynchronous start lost past the step's timeout.
			if !st.Async || cur.Status != StepRunning || decideNow.Before(cur.LeaseUntil) || decideNow.Before(cur.StartedAt.Add(st.Timeout)) {
				t.Fatalf("seed %d: start timeout of %+v (async %v)", seed, cur, st.Async)
			}
		}
		// A waiting step's work is never started again by its own task, and
		// a check task never claims a start.
		if (d.Act == actClaim) && (cur.Status == StepWaiting || st.Check > 0) {
			t.Fatalf("seed %d: claim of a waiting step or by a check: %+v check %d", seed, cur, st.Check)
		}
		if d.Act != actClaim {
			continue
		}
		// A claim happens only for the task's own generation of a step that
		// is not done, whose lease is not held, with an attempt left...
		// (or, restarting an asynchronous start never recorded, the same
		// attempt within the step's timeout)...
		if d.Restart && (!st.Async || !d.TakeOver || !decideNow.Before(cur.StartedAt.Add(st.Timeout))) {
			t.Fatalf("seed %d: restart of %+v (async %v)", seed, cur, st.Async)
		}
		if st.Generation != cur.Generation || cur.Status.Terminal() || (cur.Attempts >= cur.MaxAttempts && !d.Restart) {
			t.Fatalf("seed %d: claim of %+v for generation %d", seed, cur, st.Generation)
		}
		if cur.Status == StepRunning && decideNow.Before(cur.LeaseUntil) {
			t.Fatalf("seed %d: claim while the lease is held: %+v", seed, cur)
		}
		if d.TakeOver != (cur.Status == StepRunning) || (d.TakeOver && st.Async) != d.Restart {
			t.Fatalf("seed %d: take-over %v for %s", seed, d.TakeOver, cur.Status)
		}
		// ...only when every predecessor succeeded, unless the ledger forced it...
		for _, p := range st.Preds {
			if p.Status != StepSucceeded && !cur.Forced {
				t.Fatalf("seed %d: claim although %s is %s", seed, p.Step, p.Status)
			}
		}
		// ...and, for a retry or re-run, only of a run that has not ended.
		if cur.Attempts > 0 || cur.Generation > 1 {
			if st.Run == nil || st.Run.Status.Terminal() {
				t.Fatalf("seed %d: claim of a retry without a live run: %+v", seed, st.Run)
			}
		}
	}
}
