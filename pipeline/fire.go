package pipeline

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Fire times follow the wall clock of the pipeline's time zone, the way Cloud
// Scheduler reads a cron in a time zone, with one rule for each daylight-saving
// change:
//
//   - a wall time that does not exist (skipped by the spring-forward change)
//     fires at the next valid instant, the end of the gap (02:30 on the day
//     Paris skips from 02:00 to 03:00 fires at 03:00 CEST);
//   - a wall time that happens twice (the fall-back change) fires once, at its
//     first occurrence.
//
// The local cron (scheduler), the missed-start check and deadlines all use
// NextFire and PrevFire so that they agree.

// NextFire is the first fire time of sched strictly after after, in loc.
func NextFire(sched cron.Schedule, loc *time.Location, after time.Time) time.Time {
	w := wallOf(after.In(loc))
	for range 1000 {
		w = sched.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if t := wallInstant(w, loc); t.After(after) {
			return t
		}
		// The first occurrence of a repeated wall time, already past.
	}
	return time.Time{}
}

// PrevFire is the latest fire time of sched at or before at, in loc, or zero
// if there is none within a year.
func PrevFire(sched cron.Schedule, loc *time.Location, at time.Time) time.Time {
	for _, back := range []time.Duration{time.Hour, 26 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		t := NextFire(sched, loc, at.Add(-back))
		if t.IsZero() || t.After(at) {
			continue
		}
		for range 100000 {
			n := NextFire(sched, loc, t)
			if n.IsZero() || n.After(at) {
				return t
			}
			t = n
		}
		return t
	}
	return time.Time{}
}

// FirstFireOn is the first fire time of sched on date (YYYY-MM-DD in loc), or
// zero when it does not fire that day.
func FirstFireOn(sched cron.Schedule, loc *time.Location, date string) time.Time {
	day, err := time.ParseInLocation(time.DateOnly, date, time.UTC)
	if err != nil {
		return time.Time{}
	}
	w := sched.Next(day.Add(-time.Second))
	if w.IsZero() || w.Format(time.DateOnly) != date {
		return time.Time{}
	}
	return wallInstant(w, loc)
}

// wallOf is t's wall clock read as a UTC time, where no time is skipped or
// repeated: cron arithmetic on it is plain calendar arithmetic.
func wallOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// wallInstant is the instant the wall clock of loc shows w (a wallOf time):
// the end of the gap when w was skipped, the first occurrence when w happens
// twice.
func wallInstant(w time.Time, loc *time.Location) time.Time {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	switch tw := wallOf(t); {
	case tw.Equal(w):
		// Repeated? An earlier instant with the same wall time comes from the
		// zone before t's (with a larger offset).
		if start, _ := t.ZoneBounds(); !start.IsZero() {
			_, before := start.Add(-time.Nanosecond).Zone()
			_, cur := t.Zone()
			if before > cur {
				if alt := t.Add(-time.Duration(before-cur) * time.Second); alt.Before(start) && wallOf(alt).Equal(w) {
					return alt
				}
			}
		}
		return t
	case tw.After(w):
		// Skipped, and Go moved forward past the gap: it ends where t's zone
		// starts.
		start, _ := t.ZoneBounds()
		return start
	default:
		// Skipped, and Go moved back before the gap: it ends where t's zone
		// ends.
		_, end := t.ZoneBounds()
		return end
	}
}
