package pipeline

import (
	"context"
	"fmt"
	"maps"
	"time"
)

// lateCatchUp is how long after its deadline a run may be created and still
// be watched: older dates run by hand or by a backfill are not chased.
const lateCatchUp = 24 * time.Hour

// lateListLimit bounds the unfinished runs of one pipeline a tick looks at.
const lateListLimit = 20

// checkDeadlines notes the deadline on each unfinished dated run of def (so
// that its completion message can say how late it finished) and reports, once,
// a run not finished by it, naming the step in progress.
func (o *Orchestrator) checkDeadlines(ctx context.Context, def *Definition, now time.Time, rep *ScheduleReport) error {
	if def.Deadline == nil {
		return nil
	}
	for _, status := range []RunStatus{RunRunning, RunPending} {
		runs, err := o.ledger.ListRuns(ctx, RunFilter{Pipeline: def.Name, Status: status, Limit: lateListLimit})
		if err != nil {
			return fmt.Errorf("deadline check of %s: %w", def.Name, err)
		}
		for _, r := range runs {
			dl, ok := watchedDeadline(def, r)
			if !ok {
				continue
			}
			if err := o.checkDeadline(ctx, def, r, dl, now, rep); err != nil {
				rep.Errors = append(rep.Errors, err.Error())
			}
		}
	}
	return nil
}

// watchedDeadline is the deadline of run r, if the sweeper watches it: a run
// of a date (its key is the date), not a backfill, created no later than
// lateCatchUp after its deadline.
func watchedDeadline(def *Definition, r Run) (time.Time, bool) {
	if r.Key != r.Date || r.Trigger == "backfill" {
		return time.Time{}, false
	}
	dl, ok := def.DeadlineOn(r.Date)
	if !ok || r.CreatedAt.After(dl.Add(lateCatchUp)) {
		return time.Time{}, false
	}
	return dl, true
}

func (o *Orchestrator) checkDeadline(ctx context.Context, def *Definition, r Run, dl, now time.Time, rep *ScheduleReport) error {
	dlText := dl.UTC().Format(time.RFC3339)
	claimed := alertOwed(now)
	stored, wrote, err := o.updateRun(ctx, r, func(x *Run) bool {
		note, claim := decideLate(*x, dl, now)
		if !note && !claim {
			return false
		}
		x.Notes = maps.Clone(x.Notes)
		if x.Notes == nil {
			x.Notes = map[string]string{}
		}
		x.Notes[NoteDeadline] = dlText
		if claim {
			x.Notes[NoteLate] = claimed
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("deadline check of %s: %w", r.ID, err)
	}
	if !wrote || stored.Notes[NoteLate] != claimed {
		return nil
	}
	full, err := o.ledger.GetRun(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("late alert of %s: %w", r.ID, err)
	}
	alert := &ScheduleAlert{Pipeline: def.Name, Date: r.Date, TimeZone: def.TimeZone, Expected: dl, Late: now.Sub(dl)}
	if s := stepInProgress(def, full.Steps); s != nil {
		since := s.StartedAt
		if since.IsZero() || s.Status == StepPending {
			since = s.UpdatedAt
		}
		alert.Step, alert.StepStatus = s.Step, s.Status
		if !since.IsZero() {
			alert.StepSince = now.Sub(since)
		}
	}
	if err := o.notifyNow(ctx, Event{Kind: EventRunLate, Run: full, Schedule: alert}); err != nil {
		return nil // still owed: a tick after alertGrace sends it again
	}
	rep.Alerts = append(rep.Alerts, fmt.Sprintf("%s %s %s", EventRunLate, def.Name, r.Date))
	_, _, err = o.updateRun(ctx, full, func(x *Run) bool {
		if x.Notes[NoteLate] != claimed {
			return false
		}
		x.Notes = maps.Clone(x.Notes)
		x.Notes[NoteLate] = alertSent
		return true
	})
	if err != nil {
		return fmt.Errorf("late alert of %s: %w", r.ID, err)
	}
	return nil
}

// decideLate is the late-run decision, a pure function of the recorded run:
// note the deadline on an unfinished run that lacks it (so that its
// completion can say how late it finished), and claim the late alert of an
// unfinished run past its deadline whose alert is not sent or being sent.
func decideLate(r Run, deadline, now time.Time) (note, claim bool) {
	if r.Status.Terminal() {
		return false, false
	}
	note = r.Notes[NoteDeadline] != deadline.UTC().Format(time.RFC3339)
	claim = now.After(deadline) && alertDue(r.Notes[NoteLate], now)
	return note, claim
}

// stepInProgress is the step a late run is in: the first (in definition
// order) running or retrying step, else the first pending one whose
// predecessors all succeeded, else nil.
func stepInProgress(def *Definition, steps []StepRun) *StepRun {
	byName := map[string]*StepRun{}
	for i := range steps {
		byName[steps[i].Step] = &steps[i]
	}
	for _, s := range steps {
		if s.Status == StepRunning || s.Status == StepRetrying {
			return byName[s.Step]
		}
	}
	for _, sd := range def.Steps {
		s := byName[sd.Name]
		if s == nil || s.Status != StepPending {
			continue
		}
		ready := true
		for _, a := range sd.After {
			if p := byName[a]; p == nil || p.Status != StepSucceeded {
				ready = false
			}
		}
		if ready {
			return s
		}
	}
	return nil
}
