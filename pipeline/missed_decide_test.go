package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDecideStartTable(t *testing.T) {
	fire := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	due := fire.Add(30 * time.Minute)
	owedFresh := alertOwed(due.Add(time.Minute))
	owedStale := alertOwed(due.Add(-10 * time.Minute))
	pausedBefore := PauseState{Paused: true, At: fire.Add(-time.Hour)}
	resumedAfter := PauseState{At: fire.Add(-time.Hour), ResumedAt: fire.Add(time.Hour)}
	pausedAfterFire := PauseState{At: fire.Add(10 * time.Minute), ResumedAt: fire.Add(20 * time.Minute)}
	cases := []struct {
		name string
		f    startFacts
		want startVerdict
	}{
		{"before the fire's start_within", startFacts{Now: due.Add(-time.Second)}, startNothing},
		{"no run, due", startFacts{Now: due.Add(time.Minute)}, startAlert},
		{"exactly due", startFacts{Now: due}, startAlert},
		{"run started in time", startFacts{Now: due.Add(time.Hour), RunCreated: due}, startNothing},
		{"paused now", startFacts{Now: due.Add(time.Minute), Pause: pausedBefore}, startNothing},
		{"paused at the fire, resumed since", startFacts{Now: due.Add(2 * time.Hour), Pause: resumedAfter}, startNothing},
		{"paused and resumed after the fire", startFacts{Now: due.Add(time.Hour), Pause: pausedAfterFire}, startAlert},
		{"alert sent", startFacts{Now: due.Add(time.Hour), Alert: alertSent}, startNothing},
		{"alert being sent", startFacts{Now: due.Add(2 * time.Minute), Alert: owedFresh}, startNothing},
		{"alert claim abandoned", startFacts{Now: due.Add(time.Hour), Alert: owedStale}, startAlert},
		{"late run, alert sent", startFacts{Now: due.Add(time.Hour), RunCreated: due.Add(12 * time.Minute), Alert: alertSent}, startFollowUp},
		{"late run, no alert was sent", startFacts{Now: due.Add(time.Hour), RunCreated: due.Add(12 * time.Minute)}, startNothing},
		{"late run, follow-up sent", startFacts{Now: due.Add(time.Hour), RunCreated: due.Add(time.Minute), Alert: alertSent, FollowUp: alertSent}, startNothing},
		{"late run while paused: follow-up anyway", startFacts{Now: due.Add(time.Hour), RunCreated: due.Add(time.Minute), Alert: alertSent, Pause: pausedBefore}, startFollowUp},
	}
	for _, c := range cases {
		c.f.Fire, c.f.StartWithin = fire, 30*time.Minute
		if got := decideStart(c.f); got != c.want {
			t.Errorf("%s: decideStart = %d; want %d", c.name, got, c.want)
		}
	}
}

// TestDecideStartRandomized checks the decision's promises over random
// recorded states: never an alert before start_within is over, for a date
// with a run, while paused (then or now), or once sent or being sent; a
// follow-up only for a run created late after a sent alert, once.
func TestDecideStartRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fire := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	pick := func(ds ...time.Duration) time.Duration { return ds[rng.IntN(len(ds))] }
	states := func(now time.Time) string {
		return []string{"", alertSent, alertOwed(now.Add(-time.Minute)), alertOwed(now.Add(-time.Hour))}[rng.IntN(4)]
	}
	for range 20000 {
		within := pick(time.Minute, 30*time.Minute, 2*time.Hour)
		f := startFacts{Fire: fire, StartWithin: within, Now: fire.Add(pick(0, time.Minute, 30*time.Minute, 3*time.Hour))}
		if rng.IntN(2) == 0 {
			f.RunCreated = fire.Add(pick(-time.Hour, 0, 29*time.Minute, 31*time.Minute, 4*time.Hour))
		}
		switch rng.IntN(4) {
		case 1:
			f.Pause = PauseState{Paused: true, At: fire.Add(pick(-time.Hour, time.Minute))}
		case 2:
			f.Pause = PauseState{At: fire.Add(pick(-time.Hour, time.Minute)), ResumedAt: fire.Add(pick(-time.Minute, time.Hour))}
		}
		f.Alert, f.FollowUp = states(f.Now), states(f.Now)
		due := fire.Add(within)
		switch decideStart(f) {
		case startAlert:
			if f.Now.Before(due) || !f.RunCreated.IsZero() || f.Pause.pausedAt(f.Fire) || f.Pause.pausedAt(f.Now) || !alertDue(f.Alert, f.Now) {
				t.Fatalf("alert for %+v", f)
			}
		case startFollowUp:
			if f.RunCreated.IsZero() || !f.RunCreated.After(due) || f.Alert != alertSent || !alertDue(f.FollowUp, f.Now) || f.Now.Before(due) {
				t.Fatalf("follow-up for %+v", f)
			}
		case startNothing:
			if !f.Now.Before(due) && f.RunCreated.IsZero() && !f.Pause.pausedAt(f.Fire) && !f.Pause.pausedAt(f.Now) && alertDue(f.Alert, f.Now) {
				t.Fatalf("nothing, but the start was missed and not reported: %+v", f)
			}
		}
	}
}
