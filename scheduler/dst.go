package scheduler

import (
	"time"

	"github.com/robfig/cron/v3"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Schedule is a parsed cron schedule: Next returns the first tick after t.
type Schedule interface {
	Next(t time.Time) time.Time
}

// Parse parses a pipeline's five-field schedule for the local cron. Unlike a
// plain cron schedule it keeps the ticks whose wall time does not exist: on a
// spring-forward day (Europe/Paris skips 02:00-03:00 on 2026-03-29) a tick
// at 02:30 fires at the first instant after the gap (03:00 CEST), on the same
// date, so the run of that date still starts. Cloud Scheduler's behaviour in
// the gap is not documented beyond "may not run": docs/deploy.md says how to
// keep both in step (a schedule outside the gap, or UTC).
func Parse(spec string) (Schedule, error) {
	s, err := pipeline.ParseSchedule(spec)
	if err != nil {
		return nil, err
	}
	if spec, ok := s.(*cron.SpecSchedule); ok {
		return gapAware{spec}, nil
	}
	return s, nil // "@every": not wall-clock based
}

// gapAware adds to a cron schedule the ticks that fall in a daylight-saving
// gap of its time zone, fired at the end of the gap.
type gapAware struct {
	spec *cron.SpecSchedule
}

// maxLookahead bounds the search for a schedule's next tick (a Feb 29 only
// schedule ticks every four years; cron gives up after five).
const maxLookahead = 5 * 366 * 24 * time.Hour

func (g gapAware) Next(t time.Time) time.Time {
	next := g.spec.Next(t)
	limit := next
	if limit.IsZero() {
		limit = t.Add(maxLookahead)
	}
	loc := t.Location()
	if g.spec.Location != time.Local {
		loc = g.spec.Location
	}
	at := t.In(loc)
	for {
		_, end := at.ZoneBounds()
		if end.IsZero() || end.After(limit) {
			return next
		}
		if end.After(t) && g.gapMatches(end.Add(-time.Nanosecond), end) {
			return end // before next: the zone bounds are walked in order
		}
		at = end
	}
}

// gapMatches reports whether the spec has a tick at a wall time skipped by
// the zone change at end (before is an instant just before it).
func (g gapAware) gapMatches(before, end time.Time) bool {
	_, oldOff := before.Zone()
	_, newOff := end.Zone()
	if newOff <= oldOff {
		return false // clocks go back or stay: no wall time is skipped
	}
	// The skipped wall times: from end read on the old offset, up to end
	// read on the new one. Walked as UTC stand-ins of the wall clock.
	from := end.Add(time.Duration(oldOff) * time.Second).UTC()
	to := end.Add(time.Duration(newOff) * time.Second).UTC()
	for w := from; w.Before(to); w = w.Add(time.Minute) {
		if g.matches(w) {
			return true
		}
	}
	return false
}

// starBit marks a cron field given as "*" (see cron.SpecSchedule).
const starBit = 1 << 63

// matches reports whether the wall time w (its fields read as given) is a
// tick of the spec, with cron's day rule: when neither day field is "*", a
// day matches either.
func (g gapAware) matches(w time.Time) bool {
	s := g.spec
	if 1<<uint(w.Second())&s.Second == 0 || 1<<uint(w.Minute())&s.Minute == 0 ||
		1<<uint(w.Hour())&s.Hour == 0 || 1<<uint(w.Month())&s.Month == 0 {
		return false
	}
	dom := 1<<uint(w.Day())&s.Dom > 0
	dow := 1<<uint(w.Weekday())&s.Dow > 0
	if s.Dom&starBit > 0 || s.Dow&starBit > 0 {
		return dom && dow
	}
	return dom || dow
}

// GapTicks returns the instants from..to at which spec, read in loc, has a
// tick whose wall time a daylight-saving change skips: the local cron fires
// those at the end of the gap (the instant returned). An "@every" schedule
// has none.
func GapTicks(spec string, loc *time.Location, from, to time.Time) ([]time.Time, error) {
	s, err := pipeline.ParseSchedule(spec)
	if err != nil {
		return nil, err
	}
	cs, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, nil
	}
	g := gapAware{cs}
	var out []time.Time
	at := from.In(loc)
	for {
		_, end := at.ZoneBounds()
		if end.IsZero() || end.After(to) {
			return out, nil
		}
		if end.After(from) && g.gapMatches(end.Add(-time.Nanosecond), end) {
			out = append(out, end)
		}
		at = end
	}
}
