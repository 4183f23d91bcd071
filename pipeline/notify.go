package pipeline

import "context"

// EventKind names what happened.
type EventKind string

// Events sent to a Notifier, always after the state change is committed.
const (
	EventRunStarted    EventKind = "run_started"
	EventStepStarted   EventKind = "step_started"
	EventStepSucceeded EventKind = "step_succeeded"
	EventStepRetrying  EventKind = "step_retrying" // an attempt failed; the queue retries
	EventStepFailed    EventKind = "step_failed"   // final: out of attempts or permanent
	EventRunSucceeded  EventKind = "run_succeeded"
	EventRunFailed     EventKind = "run_failed"
	EventRunCancelled  EventKind = "run_cancelled"
	// Schedule alerts (Event.Schedule says what was expected), sent by the
	// sweeper once per pipeline and date.
	EventStartMissed EventKind = "start_missed" // no run start_within after the scheduled time
	EventStartedLate EventKind = "started_late" // the follow-up: the run of a missed start appeared
	EventRunLate     EventKind = "run_late"     // a run not finished by its deadline
)

// EventStepWaiting says an asynchronous step's work was started and the
// step waits for it: sent when the wait begins and when a check's error
// appears or clears, not on every check.
const EventStepWaiting EventKind = "step_waiting"

// Event is a committed change of a run. Step is set for step events.
type Event struct {
	Kind EventKind
	Run  Run
	Step *StepRun
	// Schedule is set for schedule alerts.
	Schedule *ScheduleAlert
}

// Notifier tells people about runs. The orchestrator calls it from its
// background sender, never from a step's handler: a run's events one at a
// time and in order, each within a 5 s bound (ctx), and sweeper ticks wait on
// it. Its failure never fails a step: the orchestrator logs the error and
// goes on (a final notification stays owed).
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// EventFilter is optional for a Notifier: one that takes only some kinds of
// event says which. The orchestrator does not queue a run's or a step's event
// that its notifier does not want (with only the log notifier, a step's
// started and succeeded events cost nothing in the background), and
// Notifiers hands each member only the kinds it wants. Final and schedule
// notifications, which the ledger records as sent, are always handed over.
type EventFilter interface {
	Wants(k EventKind) bool
}

// Wants reports whether n takes events of kind k: true unless n is an
// EventFilter that says otherwise.
func Wants(n Notifier, k EventKind) bool {
	f, ok := n.(EventFilter)
	return !ok || f.Wants(k)
}

// Notifiers fans an event out to several notifiers.
type Notifiers []Notifier

var _ EventFilter = Notifiers(nil)

// Wants reports whether any of ns wants events of kind k.
func (ns Notifiers) Wants(k EventKind) bool {
	for _, n := range ns {
		if Wants(n, k) {
			return true
		}
	}
	return false
}

// Notify sends e to every notifier that wants its kind, returning the first
// error.
func (ns Notifiers) Notify(ctx context.Context, e Event) error {
	var first error
	for _, n := range ns {
		if !Wants(n, e.Kind) {
			continue
		}
		if err := n.Notify(ctx, e); err != nil && first == nil {
			first = err
		}
	}
	return first
}
