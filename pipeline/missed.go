package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// ScheduleReport says what one schedule check did.
type ScheduleReport struct {
	// Alerts lists the alerts sent, as "kind pipeline date".
	Alerts []string `json:"alerts"`
	Errors []string `json:"errors,omitempty"`
}

// SweeperTickMessage is the log line of every sweeper pass: the deployment's
// log-based metric counts it and alerts when it stops (deploy/terraform).
const SweeperTickMessage = "sweeper tick"

// checkSchedules is the sweeper's watch on schedules: for every scheduled
// pipeline it reports a missed start (and its follow-up once the run
// appears), and for every pipeline with a deadline it reports runs not
// finished by it. Each alert is sent once per pipeline and date, however many
// ticks and instances run it (the ledger records it), and never while the
// pipeline is paused.
func (o *Orchestrator) checkSchedules(ctx context.Context, now time.Time) ScheduleReport {
	rep := ScheduleReport{Alerts: []string{}}
	for _, def := range o.catalog.All() {
		if err := o.checkMissedStart(ctx, def, now, &rep); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
		if err := o.checkDeadlines(ctx, def, now, &rep); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	// The sweeper's heartbeat: deploy/terraform counts this line and alerts
	// when it stops.
	o.log.InfoContext(ctx, SweeperTickMessage, "pipelines", len(o.catalog.All()), "alerts", len(rep.Alerts), "errors", len(rep.Errors))
	return rep
}

// CheckSchedules runs the schedule checks at the orchestrator's clock; the
// sweeper (Reconcile) calls it on every tick.
func (o *Orchestrator) CheckSchedules(ctx context.Context) ScheduleReport {
	return o.checkSchedules(ctx, o.now())
}

// checkMissedStart reports the latest scheduled start of def when its run
// does not exist start_within after it, and the follow-up once it does. It
// reads only what decideStart needs: nothing before the start is due, the
// run, then the mark and the pause.
func (o *Orchestrator) checkMissedStart(ctx context.Context, def *Definition, now time.Time, rep *ScheduleReport) error {
	sched := def.CronSchedule()
	if sched == nil || def.StartWithin <= 0 {
		return nil
	}
	f := startFacts{Now: now, Fire: PrevFire(sched, def.Location, now), StartWithin: def.StartWithin}
	if f.Fire.IsZero() || now.Before(f.Fire.Add(f.StartWithin)) {
		return nil
	}
	date := f.Fire.In(def.Location).Format(time.DateOnly)
	run, err := o.ledger.GetRun(ctx, RunID(def.Name, date))
	switch {
	case err == nil:
		f.RunCreated = run.CreatedAt
		if !run.CreatedAt.After(f.Fire.Add(f.StartWithin)) {
			return nil // started in time
		}
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("missed-start check of %s %s: %w", def.Name, date, err)
	}
	m, err := o.ledger.GetMark(ctx, MarkID(MarkMissedStart, def.Name, date))
	switch {
	case err == nil:
		f.Alert, f.FollowUp = m.Fields[markAlert], m.Fields[markFollowUp]
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("missed-start check of %s %s: %w", def.Name, date, err)
	}
	if f.RunCreated.IsZero() {
		if f.Pause, err = o.PauseState(ctx, def.Name); err != nil {
			return err
		}
	}
	switch decideStart(f) {
	case startFollowUp:
		return o.followUp(ctx, def, f.Fire, run, m, now, rep)
	case startAlert:
		if m.ID == "" {
			nm := NewMark(MarkMissedStart, def.Name, date, now)
			nm.Fields[markExpected] = f.Fire.UTC().Format(time.RFC3339)
			if m, _, err = o.ledger.CreateMark(ctx, nm); err != nil {
				return fmt.Errorf("missed-start check of %s %s: %w", def.Name, date, err)
			}
		}
		alert := &ScheduleAlert{
			Pipeline: def.Name, Date: date, TimeZone: def.TimeZone, Expected: f.Fire, Late: now.Sub(f.Fire),
			Causes: missedStartCauses, Check: "pipeline doctor",
		}
		sent, err := o.sendMarked(ctx, m, markAlert, now, Event{Kind: EventStartMissed, Run: Run{Pipeline: def.Name, Date: date, Key: date}, Schedule: alert})
		if sent {
			rep.Alerts = append(rep.Alerts, fmt.Sprintf("%s %s %s", EventStartMissed, def.Name, date))
		}
		return err
	}
	return nil
}

// startFacts are the recorded facts the missed-start check decides on.
type startFacts struct {
	Now, Fire   time.Time
	StartWithin time.Duration
	// RunCreated is when the date's run was created (zero: no run).
	RunCreated time.Time
	Pause      PauseState
	// Alert and FollowUp are the states of the date's missed-start mark
	// ("" when there is no mark).
	Alert, FollowUp string
}

// startVerdict is what the missed-start check does.
type startVerdict int

const (
	startNothing  startVerdict = iota // not due, started in time, paused, or already said
	startAlert                        // claim and send the missed-start alert
	startFollowUp                     // claim and send "started N late"
)

// decideStart is the missed-start decision, a pure function of recorded
// state: alert when no run exists start_within after the fire time and the
// pipeline was not paused then (nor is now) and the alert is not sent or
// being sent; follow up when the run appeared after that, the alert was
// sent, and the follow-up is not sent or being sent.
func decideStart(f startFacts) startVerdict {
	due := f.Fire.Add(f.StartWithin)
	switch {
	case f.Fire.IsZero() || f.Now.Before(due):
		return startNothing
	case !f.RunCreated.IsZero():
		if f.RunCreated.After(due) && f.Alert == alertSent && alertDue(f.FollowUp, f.Now) {
			return startFollowUp
		}
		return startNothing
	case f.Pause.pausedAt(f.Fire) || f.Pause.pausedAt(f.Now):
		return startNothing
	case alertDue(f.Alert, f.Now):
		return startAlert
	}
	return startNothing
}

// followUp posts "started N late" once for a run whose missed start was
// reported, and notes it on the run.
func (o *Orchestrator) followUp(ctx context.Context, def *Definition, fire time.Time, run Run, m Mark, now time.Time, rep *ScheduleReport) error {
	late := run.CreatedAt.Sub(fire)
	if run.Notes[NoteStartedLate] == "" {
		if _, _, err := o.updateRun(ctx, run, func(x *Run) bool {
			if x.Notes[NoteStartedLate] != "" {
				return false
			}
			x.Notes = maps.Clone(x.Notes)
			if x.Notes == nil {
				x.Notes = map[string]string{}
			}
			x.Notes[NoteStartedLate] = late.Round(time.Second).String()
			return true
		}); err != nil {
			return fmt.Errorf("missed-start follow-up of %s: %w", run.ID, err)
		}
	}
	alert := &ScheduleAlert{Pipeline: def.Name, Date: run.Date, TimeZone: def.TimeZone, Expected: fire, Late: late}
	r := run
	r.Steps = nil
	sent, err := o.sendMarked(ctx, m, markFollowUp, now, Event{Kind: EventStartedLate, Run: r, Schedule: alert})
	if sent {
		rep.Alerts = append(rep.Alerts, fmt.Sprintf("%s %s %s", EventStartedLate, def.Name, run.Date))
	}
	return err
}

// sendMarked sends e once for field of mark m: it claims the field (owed),
// notifies, and records it sent. It reports whether it sent e.
func (o *Orchestrator) sendMarked(ctx context.Context, m Mark, field string, now time.Time, e Event) (bool, error) {
	claimed := alertOwed(now)
	m, ok, err := o.setMarkField(ctx, m, field, claimed, func(cur string) bool { return alertDue(cur, now) })
	if err != nil || !ok {
		return false, err
	}
	if err := o.notifyNow(ctx, e); err != nil {
		return false, nil // still owed: a tick after alertGrace sends it again
	}
	_, _, err = o.setMarkField(ctx, m, field, alertSent, func(cur string) bool { return cur == claimed })
	return true, err
}

// setMarkField writes field=val on the mark when cond holds for its current
// value, by compare-and-swap, re-reading on conflicts.
func (o *Orchestrator) setMarkField(ctx context.Context, m Mark, field, val string, cond func(string) bool) (Mark, bool, error) {
	for range 5 {
		if !cond(m.Fields[field]) {
			return m, false, nil
		}
		w := m
		w.Fields = maps.Clone(m.Fields)
		if w.Fields == nil {
			w.Fields = map[string]string{}
		}
		w.Fields[field] = val
		w.UpdatedAt = o.now().UTC()
		stored, err := o.ledger.UpdateMark(ctx, w)
		if err == nil {
			return stored, true, nil
		}
		if !errors.Is(err, ErrConflict) {
			return m, false, fmt.Errorf("mark %s: %w", m.ID, err)
		}
		if m, err = o.ledger.GetMark(ctx, m.ID); err != nil {
			return m, false, fmt.Errorf("mark %s: %w", m.ID, err)
		}
	}
	return m, false, fmt.Errorf("%w: mark %s keeps changing", ErrConflict, m.ID)
}
