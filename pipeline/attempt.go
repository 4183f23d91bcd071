package pipeline

import (
	"slices"
	"time"
	"unicode/utf8"
)

// Attempt is one attempt of a step as the step's history keeps it: which
// attempt of which generation, when it started, started waiting (an
// asynchronous step) and ended, how it ended and its error (truncated).
type Attempt struct {
	N            int        `json:"n"`
	Generation   int        `json:"generation"`
	Status       StepStatus `json:"status"`
	StartedAt    time.Time  `json:"started_at"`
	WaitingSince time.Time  `json:"waiting_since,omitzero"`
	FinishedAt   time.Time  `json:"finished_at,omitzero"`
	Error        string     `json:"error,omitempty"`
}

// Bounds of a step's history: the attempts it keeps (the oldest are dropped)
// and the bytes of an attempt's error it keeps.
const (
	MaxHistory      = 20
	MaxAttemptError = 300
)

// lostAttempt is the error of an attempt that ended without recording its
// end: a later attempt (a lease takeover, a new generation) began.
const lostAttempt = "no result recorded (its lease expired or a newer attempt began)"

// WithHistory returns s with its History brought up to date with the
// attempt its fields describe (Generation, Attempts, StartedAt, Status,
// WaitingSince, FinishedAt, Error): that attempt's entry is added when it is
// new, or else updated until its end is recorded (a later write that keeps
// the end, such as cancelling a retrying step, leaves the entry as it ended). A ledger calls it on every step it writes, so that
// the history goes into the same write as the attempt's start or end, and on
// every step it reads, so that a record written before steps kept a history
// shows its last attempt. It is a pure function of s; s.History is not
// modified in place.
//
// An attempt is new when its generation differs from the last entry's, its
// number is higher, or its number is the same with another start (the
// attempt after one that shutdown released without counting it). A number
// lower than the last entry's is that entry released by shutdown. An
// earlier entry that never recorded an end when a new one begins keeps the
// new one's start as its end and says no result was recorded.
func (s StepRun) WithHistory() StepRun {
	if s.StartedAt.IsZero() || (s.Attempts <= 0 && len(s.History) == 0) {
		return s
	}
	n := len(s.History)
	if n > 0 && !newAttempt(s.History[n-1], s) {
		last := s.History[n-1]
		cur := s.synced(last)
		if cur == last && n <= MaxHistory {
			return s // nothing to change: no copy (every read of a step comes here)
		}
		h := slices.Clone(s.History)
		h[n-1] = cur
		s.History = bounded(h)
		return s
	}
	h := make([]Attempt, n, n+1)
	copy(h, s.History)
	if n > 0 && h[n-1].FinishedAt.IsZero() && !h[n-1].Status.Terminal() {
		h[n-1].Status, h[n-1].FinishedAt, h[n-1].Error = StepRetrying, s.StartedAt, lostAttempt
	}
	h = append(h, s.synced(Attempt{N: s.Attempts, Generation: s.Generation, StartedAt: s.StartedAt}))
	s.History = bounded(h)
	return s
}

// synced is a, the entry of s's current attempt, updated from s's fields
// until its end is recorded.
func (s StepRun) synced(a Attempt) Attempt {
	if !a.FinishedAt.IsZero() && sameMicro(a.FinishedAt, s.FinishedAt) {
		return a
	}
	a.Status, a.WaitingSince, a.FinishedAt, a.Error = s.Status, s.WaitingSince, s.FinishedAt, ""
	if a.WaitingSince.Before(a.StartedAt) {
		a.WaitingSince = time.Time{}
	}
	if a.FinishedAt.IsZero() && s.Status.Terminal() {
		// Stopped without an end of its own (a waiting step cancelled).
		a.FinishedAt = s.UpdatedAt
	}
	switch s.Status {
	case StepRunning, StepWaiting, StepSucceeded, StepPending:
	default:
		a.Error = truncateError(s.Error)
	}
	return a
}

// bounded keeps the last MaxHistory attempts of h.
func bounded(h []Attempt) []Attempt {
	if len(h) > MaxHistory {
		return slices.Clone(h[len(h)-MaxHistory:])
	}
	return h
}

// newAttempt reports whether s describes an attempt after last.
func newAttempt(last Attempt, s StepRun) bool {
	switch {
	case last.Generation != s.Generation:
		return true
	case last.N < s.Attempts:
		return true
	case last.N == s.Attempts:
		// Ledgers keep microseconds (Firestore): compare at that precision.
		return !sameMicro(last.StartedAt, s.StartedAt)
	}
	return false
}

// sameMicro reports whether a and b are the same instant at microsecond
// precision, the precision ledgers keep (Firestore).
func sameMicro(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

// truncateError cuts msg to MaxAttemptError bytes on a rune boundary,
// marking the cut with an ellipsis.
func truncateError(msg string) string {
	if len(msg) <= MaxAttemptError {
		return msg
	}
	cut := MaxAttemptError - len("…")
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}
