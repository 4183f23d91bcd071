package pipeline

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestWithHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	done1 := Attempt{N: 1, Generation: 1, Status: StepRetrying, StartedAt: sec(1), FinishedAt: sec(2), Error: "boom"}
	running1 := Attempt{N: 1, Generation: 1, Status: StepRunning, StartedAt: sec(1)}
	cases := []struct {
		name string
		s    StepRun
		want []Attempt
	}{
		{"pending: nothing", StepRun{Status: StepPending, Generation: 1}, nil},
		{"a new generation's reset keeps the history", StepRun{Status: StepPending, Generation: 2, History: []Attempt{done1}}, []Attempt{done1}},
		{"old record: its last attempt", StepRun{Status: StepRetrying, Generation: 1, Attempts: 1, StartedAt: sec(1), FinishedAt: sec(2), Error: "boom"}, []Attempt{done1}},
		{"claim: a running entry without the last error",
			StepRun{Status: StepRunning, Generation: 1, Attempts: 2, StartedAt: sec(3), Error: "boom", History: []Attempt{done1}},
			[]Attempt{done1, {N: 2, Generation: 1, Status: StepRunning, StartedAt: sec(3)}}},
		{"end of the running attempt",
			StepRun{Status: StepSucceeded, Generation: 1, Attempts: 1, StartedAt: sec(1), FinishedAt: sec(4), History: []Attempt{running1}},
			[]Attempt{{N: 1, Generation: 1, Status: StepSucceeded, StartedAt: sec(1), FinishedAt: sec(4)}}},
		{"released by shutdown: not counted, same entry",
			StepRun{Status: StepRetrying, Generation: 1, Attempts: 0, StartedAt: sec(1), FinishedAt: sec(2), Error: "interrupted", History: []Attempt{running1}},
			[]Attempt{{N: 1, Generation: 1, Status: StepRetrying, StartedAt: sec(1), FinishedAt: sec(2), Error: "interrupted"}}},
		{"released by shutdown after attempt 1",
			StepRun{Status: StepRetrying, Generation: 1, Attempts: 1, StartedAt: sec(3), FinishedAt: sec(4), Error: "interrupted",
				History: []Attempt{done1, {N: 2, Generation: 1, Status: StepRunning, StartedAt: sec(3)}}},
			[]Attempt{done1, {N: 2, Generation: 1, Status: StepRetrying, StartedAt: sec(3), FinishedAt: sec(4), Error: "interrupted"}}},
		{"same number, new start: the attempt after a release",
			StepRun{Status: StepRunning, Generation: 1, Attempts: 1, StartedAt: sec(5), History: []Attempt{done1}},
			[]Attempt{done1, {N: 1, Generation: 1, Status: StepRunning, StartedAt: sec(5)}}},
		{"takeover: the lost attempt ends at the new start",
			StepRun{Status: StepRunning, Generation: 1, Attempts: 2, StartedAt: sec(9), History: []Attempt{running1}},
			[]Attempt{{N: 1, Generation: 1, Status: StepRetrying, StartedAt: sec(1), FinishedAt: sec(9), Error: lostAttempt}, {N: 2, Generation: 1, Status: StepRunning, StartedAt: sec(9)}}},
		{"new generation",
			StepRun{Status: StepRunning, Generation: 2, Attempts: 1, StartedAt: sec(7), History: []Attempt{done1}},
			[]Attempt{done1, {N: 1, Generation: 2, Status: StepRunning, StartedAt: sec(7)}}},
		{"waiting",
			StepRun{Status: StepWaiting, Generation: 1, Attempts: 1, StartedAt: sec(1), WaitingSince: sec(2), History: []Attempt{running1}},
			[]Attempt{{N: 1, Generation: 1, Status: StepWaiting, StartedAt: sec(1), WaitingSince: sec(2)}}},
		{"a waiting step cancelled ends at the update",
			StepRun{Status: StepCancelled, Generation: 1, Attempts: 1, StartedAt: sec(1), WaitingSince: sec(2), UpdatedAt: sec(8), Error: "run was cancelled", History: []Attempt{running1}},
			[]Attempt{{N: 1, Generation: 1, Status: StepCancelled, StartedAt: sec(1), WaitingSince: sec(2), FinishedAt: sec(8), Error: "run was cancelled"}}},
		{"a write after the end leaves the entry",
			StepRun{Status: StepCancelled, Generation: 1, Attempts: 1, StartedAt: sec(1), FinishedAt: sec(2), Error: "cancelled", History: []Attempt{done1}},
			[]Attempt{done1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := append([]Attempt(nil), c.s.History...)
			got := c.s.WithHistory().History
			if c.want == nil {
				c.want = in
			}
			if !sameAttempts(got, c.want) {
				t.Errorf("history\n got %+v\nwant %+v", got, c.want)
			}
			if !sameAttempts(c.s.History, in) {
				t.Errorf("the input history was modified: %+v", c.s.History)
			}
			if again := c.s.WithHistory().WithHistory().History; !sameAttempts(again, got) {
				t.Errorf("not idempotent: %+v", again)
			}
		})
	}
}

func sameAttempts(a, b []Attempt) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.N != y.N || x.Generation != y.Generation || x.Status != y.Status || x.Error != y.Error ||
			!x.StartedAt.Equal(y.StartedAt) || !x.WaitingSince.Equal(y.WaitingSince) || !x.FinishedAt.Equal(y.FinishedAt) {
			return false
		}
	}
	return true
}

// TestWithHistoryRandom drives random attempt sequences (retries, re-runs,
// shutdown releases, takeovers, writes after the end) through WithHistory as
// a ledger would and checks the history against a model: one entry per
// claim, in order, the last MaxHistory kept, every entry but the current
// one ended.
func TestWithHistoryRandom(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 13))
		s := StepRun{Status: StepPending, Generation: 1, MaxAttempts: 5}
		var claims []Attempt // the model: every claim, in order
		clock := t0
		tick := func() time.Time { clock = clock.Add(time.Duration(1+rng.IntN(1000)) * time.Millisecond); return clock }
		for range 60 {
			s = s.WithHistory() // the write
			switch op := rng.IntN(6); {
			case op <= 1: // claim
				s.Attempts++
				s.Status, s.StartedAt, s.FinishedAt, s.WaitingSince = StepRunning, tick(), time.Time{}, time.Time{}
				claims = append(claims, Attempt{N: s.Attempts, Generation: s.Generation, StartedAt: s.StartedAt})
			case op == 2 && s.Status == StepRunning: // end
				s.Status, s.FinishedAt, s.Error = []StepStatus{StepRetrying, StepSucceeded, StepFailed}[rng.IntN(3)], tick(), strings.Repeat("x", rng.IntN(400))
			case op == 3 && s.Status == StepRunning && s.Attempts > 0: // shutdown release
				s.Status, s.Attempts, s.FinishedAt, s.Error = StepRetrying, s.Attempts-1, tick(), "interrupted"
			case op == 4: // an operator's re-run
				s.Generation++
				s.Status, s.Attempts, s.StartedAt, s.FinishedAt, s.WaitingSince = StepPending, 0, time.Time{}, time.Time{}, time.Time{}
			case op == 5: // a write that changes nothing of the attempt
				s.UpdatedAt = tick()
			}
		}
		h := s.WithHistory().History
		want := claims[max(0, len(claims)-MaxHistory):]
		if len(h) != len(want) {
			t.Fatalf("seed %d: %d entries, want %d", seed, len(h), len(want))
		}
		for i, w := range want {
			g := h[i]
			if g.N != w.N || g.Generation != w.Generation || !g.StartedAt.Equal(w.StartedAt) {
				t.Fatalf("seed %d: entry %d = %+v, want attempt %d of generation %d started %v", seed, i, g, w.N, w.Generation, w.StartedAt)
			}
			if len(g.Error) > MaxAttemptError {
				t.Fatalf("seed %d: entry %d error is %d bytes", seed, i, len(g.Error))
			}
			if i < len(want)-1 && (g.FinishedAt.IsZero() || g.FinishedAt.Before(g.StartedAt)) {
				t.Fatalf("seed %d: entry %d before the last is not ended: %+v", seed, i, g)
			}
		}
	}
}
