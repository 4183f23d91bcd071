package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ScheduleInfo is the state of one scheduled pipeline: its next fire time,
// whether it is paused, and how its latest scheduled date went.
type ScheduleInfo struct {
	Pipeline    string        `json:"pipeline"`
	Schedule    string        `json:"schedule"`
	TimeZone    string        `json:"time_zone"`
	Deadline    string        `json:"deadline,omitempty"`
	StartWithin time.Duration `json:"start_within_ns,omitempty"`
	Next        time.Time     `json:"next,omitzero"`
	Pause       PauseState    `json:"pause"`
	// Last is the latest fire time, LastDate its run date, LastRun the run's
	// status ("" when there is none) and Marks what went wrong with it:
	// "missed" (no run start_within after the fire time), "started N late",
	// "late" (not finished by the deadline), "finished N late".
	Last     time.Time `json:"last,omitzero"`
	LastDate string    `json:"last_date,omitempty"`
	LastRun  RunStatus `json:"last_run,omitempty"`
	Marks    []string  `json:"marks,omitempty"`
}

// Schedules reports every scheduled pipeline's ScheduleInfo at the
// orchestrator's clock.
func (o *Orchestrator) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	now := o.now()
	out := []ScheduleInfo{}
	for _, def := range o.catalog.All() {
		sched := def.CronSchedule()
		if sched == nil {
			continue
		}
		info := ScheduleInfo{Pipeline: def.Name, Schedule: def.Schedule, TimeZone: def.TimeZone, StartWithin: def.StartWithin,
			Next: NextFire(sched, def.Location, now)}
		if def.Deadline != nil {
			info.Deadline = def.Deadline.Text
		}
		pause, err := o.PauseState(ctx, def.Name)
		if err != nil {
			return nil, err
		}
		info.Pause = pause
		if info.Last = PrevFire(sched, def.Location, now); !info.Last.IsZero() {
			info.LastDate = info.Last.In(def.Location).Format(time.DateOnly)
			r, err := o.ledger.GetRun(ctx, RunID(def.Name, info.LastDate))
			switch {
			case err == nil:
				info.LastRun = r.Status
				info.Marks = RunMarks(r)
			case !errors.Is(err, ErrNotFound):
				return nil, fmt.Errorf("schedules: %w", err)
			case pause.pausedAt(info.Last):
				info.Marks = []string{"skipped: paused"}
			case now.After(info.Last.Add(def.StartWithin)):
				info.Marks = []string{"missed"}
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// RunMarks are a run's schedule marks from its notes: "started N late",
// "late" (its late alert was sent and it has not finished), "finished N late".
func RunMarks(r Run) []string {
	var out []string
	if s := r.Notes[NoteStartedLate]; s != "" {
		out = append(out, "started "+s+" late")
	}
	if by, _, ok := Late(r); ok {
		out = append(out, "finished "+by.Round(time.Second).String()+" late")
	} else if r.Notes[NoteLate] != "" && !r.Status.Terminal() {
		out = append(out, "late")
	}
	return out
}
