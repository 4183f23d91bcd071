package ui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pipelinehq/pipeline/pipeline"
)

// timeline places every attempt the steps' histories keep (retries, and the
// attempts of earlier generations before an operator's resume or re-run) on
// the run's time axis, one row per step, in per-mille of the axis. An
// asynchronous attempt's bar has two parts: its start, then its wait.
type timeline struct {
	Start, End time.Time
	Rows       []timelineRow
}

type timelineRow struct {
	Step        string
	Status      string
	Attempts    int
	MaxAttempts int
	Bars        []timelineBar
	Marks       []attemptMark
}

// attemptMark is a run of consecutive attempts that ended the same way, as
// the row's text shows them: "↻×3 ✓".
type attemptMark struct {
	Status string
	Count  int
}

// timelineBar is one attempt: X, W its whole span, WaitX the start of its
// wait (0 when it did not wait).
type timelineBar struct {
	N, Generation int
	Status        string
	X, W, WaitX   int
	Label         string
}

// Waited is the width of the bar's waiting part.
func (b timelineBar) Waited() int {
	if b.WaitX == 0 {
		return 0
	}
	return b.X + b.W - b.WaitX
}

// minBarW is the narrowest bar drawn (per mille), so that an instant attempt
// still shows; gapW is cut off a bar's end so that back-to-back attempts
// stay apart.
const minBarW, gapW = 4, 2

func buildTimeline(r pipeline.Run, steps []runStep, loc *time.Location) timeline {
	// The axis spans the recorded times only (not the clock), so a live page
	// changes when the run does; an attempt still running reaches the axis
	// end.
	t := timeline{Start: runStart(r), End: r.FinishedAt}
	for _, s := range steps {
		for _, a := range s.History {
			if a.StartedAt.Before(t.Start) {
				t.Start = a.StartedAt
			}
			for _, x := range []time.Time{a.StartedAt, a.WaitingSince, a.FinishedAt} {
				if x.After(t.End) {
					t.End = x
				}
			}
		}
	}
	if t.End.Before(t.Start) {
		t.End = t.Start
	}
	span := t.End.Sub(t.Start)
	if span <= 0 {
		span = time.Millisecond
	}
	pm := func(x time.Time) int {
		v := int(1000 * x.Sub(t.Start) / span)
		return min(1000, max(0, v))
	}
	for _, s := range steps {
		row := timelineRow{Step: s.Step, Status: s.Cell, Attempts: s.Attempts, MaxAttempts: s.MaxAttempts}
		for _, a := range s.History {
			end := a.FinishedAt
			if end.IsZero() || end.Before(a.StartedAt) {
				end = t.End
			}
			b := timelineBar{N: a.N, Generation: a.Generation, Status: string(a.Status), X: pm(a.StartedAt), Label: attemptLabel(a, loc)}
			b.W = max(minBarW, pm(end)-b.X)
			if b.W > 3*gapW {
				b.W -= gapW
			}
			if !a.WaitingSince.IsZero() {
				b.WaitX = min(b.X+b.W, max(b.X+1, pm(a.WaitingSince)))
			}
			row.Bars = append(row.Bars, b)
			if k := len(row.Marks) - 1; k >= 0 && row.Marks[k].Status == b.Status {
				row.Marks[k].Count++
			} else {
				row.Marks = append(row.Marks, attemptMark{Status: b.Status, Count: 1})
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// attemptLabel describes an attempt in words, for its bar's tooltip and
// screen readers: "attempt 1 (generation 2) retrying, 06:00:01.000–06:00:02.000
// (1.0s): HTTP 503" (the start of the error only).
func attemptLabel(a pipeline.Attempt, loc *time.Location) string {
	var b strings.Builder
	fmt.Fprintf(&b, "attempt %d", a.N)
	if a.Generation > 1 {
		fmt.Fprintf(&b, " (generation %d)", a.Generation)
	}
	fmt.Fprintf(&b, " %s, %s–", labels[string(a.Status)], clock(a.StartedAt, loc))
	if a.FinishedAt.IsZero() {
		b.WriteString("now")
	} else {
		fmt.Fprintf(&b, "%s (%s)", clock(a.FinishedAt, loc), fmtDur(a.FinishedAt.Sub(a.StartedAt)))
	}
	if !a.WaitingSince.IsZero() {
		fmt.Fprintf(&b, ", waiting since %s", clock(a.WaitingSince, loc))
	}
	if a.Error != "" {
		b.WriteString(": " + shortError(a.Error))
	}
	return b.String()
}

// labelError is how much of an attempt's error its bar's label repeats (the
// step's attempt list has the whole of it).
const labelError = 48

// shortError cuts msg to labelError bytes on a rune boundary.
func shortError(msg string) string {
	if len(msg) <= labelError {
		return msg
	}
	cut := labelError
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}

// clock prints the time of day of t in loc, with milliseconds.
func clock(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("15:04:05.000")
}
