package pipeline

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultStartWithin is how long after a scheduled fire time its run must
// exist before the sweeper reports a missed start, unless the pipeline file
// says otherwise (start_within).
const DefaultStartWithin = 30 * time.Minute

// maxDeadlineDays bounds the "+Nd HH:MM" form of a deadline.
const maxDeadlineDays = 7

// Deadline is when the run of a date must be finished: a wall-clock time in
// the pipeline's time zone on the run's date or Days after it ("07:30",
// "+1d 02:00"), or a duration after the scheduled time of the date ("90m").
type Deadline struct {
	// Text is the deadline as written.
	Text string
	// Days and Clock are the wall-clock form.
	Days  int
	Clock time.Duration // since midnight
	// After is the duration form (then Days and Clock are zero).
	After time.Duration
}

var deadlineClockRE = regexp.MustCompile(`^(?:\+(\d+)d\s+)?([01]?\d|2[0-3]):([0-5]\d)$`)

// ParseDeadline reads a deadline: "HH:MM", "+Nd HH:MM" or a Go duration.
func ParseDeadline(s string) (Deadline, error) {
	if m := deadlineClockRE.FindStringSubmatch(s); m != nil {
		d := Deadline{Text: s}
		if m[1] != "" {
			n, err := strconv.Atoi(m[1])
			if err != nil || n > maxDeadlineDays {
				return Deadline{}, fmt.Errorf("deadline %q: at most +%dd", s, maxDeadlineDays)
			}
			d.Days = n
		}
		h, _ := strconv.Atoi(m[2])
		mm, _ := strconv.Atoi(m[3])
		d.Clock = time.Duration(h)*time.Hour + time.Duration(mm)*time.Minute
		return d, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 || v > maxDeadlineDays*24*time.Hour {
		return Deadline{}, fmt.Errorf(`deadline %q is not a wall-clock time like "07:30" or "+1d 02:00", nor a positive duration like 90m (at most %dd)`, s, maxDeadlineDays)
	}
	return Deadline{Text: s, After: v}, nil
}

// Relative says whether the deadline counts from the scheduled time.
func (d Deadline) Relative() bool { return d.After > 0 }

// DeadlineOn is when the run of date (YYYY-MM-DD) must be finished, or false
// when the pipeline has no deadline, or a relative one and no scheduled time
// on that date.
func (d *Definition) DeadlineOn(date string) (time.Time, bool) {
	if d.Deadline == nil {
		return time.Time{}, false
	}
	if d.Deadline.Relative() {
		s := d.ScheduledOn(date)
		if s.IsZero() {
			return time.Time{}, false
		}
		return s.Add(d.Deadline.After), true
	}
	day, err := time.ParseInLocation(time.DateOnly, date, time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	w := day.AddDate(0, 0, d.Deadline.Days).Add(d.Deadline.Clock)
	return wallInstant(w, d.Location), true
}

// ScheduledOn is the first fire time of the pipeline's schedule on date, or
// zero when it is not scheduled or does not fire that day.
func (d *Definition) ScheduledOn(date string) time.Time {
	s := d.CronSchedule()
	if s == nil {
		return time.Time{}
	}
	return FirstFireOn(s, d.Location, date)
}

// CronSchedule is the parsed schedule, or nil when the pipeline is not
// scheduled (or its schedule does not parse: Load refuses those). Load keeps
// it parsed; a Definition built by hand has it parsed on each call (never
// cached: definitions are read concurrently).
func (d *Definition) CronSchedule() cron.Schedule {
	if d.cron != nil || d.Schedule == "" {
		return d.cron
	}
	s, err := ParseSchedule(d.Schedule)
	if err != nil {
		return nil
	}
	return s
}

// checkTiming validates deadline and start_within against the schedule and
// fills the definition's fields.
func (d *Definition) checkTiming(deadline, startWithin string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	d.cron = d.CronSchedule() // parsed once, before the definition is shared
	if startWithin != "" {
		v, err := time.ParseDuration(startWithin)
		switch {
		case err != nil || v <= 0 || v > 24*time.Hour:
			bad("start_within %q is not a positive duration of at most 24h, like 30m", startWithin)
		case d.Schedule == "":
			bad("start_within %q needs a schedule: it is how long after a scheduled time the run must exist", startWithin)
		}
		d.StartWithin = v
	} else if d.Schedule != "" {
		d.StartWithin = DefaultStartWithin
	}
	if deadline == "" {
		return errs
	}
	dl, err := ParseDeadline(deadline)
	if err != nil {
		return append(errs, err)
	}
	d.Deadline = &dl
	if dl.Relative() {
		if d.Schedule == "" {
			bad(`deadline %q counts from the scheduled time but the pipeline has no schedule: give a wall-clock time like "07:30"`, deadline)
		}
		return errs
	}
	if d.CronSchedule() == nil || d.Location == nil {
		return errs
	}
	// The deadline must fall after the scheduled time on every day it fires:
	// try a fortnight without daylight-saving changes.
	day := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
	for i := range 14 {
		date := day.AddDate(0, 0, i).Format(time.DateOnly)
		s := d.ScheduledOn(date)
		if s.IsZero() {
			continue
		}
		if due, _ := d.DeadlineOn(date); !due.After(s) {
			bad(`deadline %q falls before the scheduled time %s of the run's date: give a later time, or one on the next day like "+1d %s"`,
				deadline, s.In(d.Location).Format("15:04"), clockText(dl.Clock))
			break
		}
	}
	return errs
}

func clockText(c time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(c.Hours()), int(c.Minutes())%60)
}
