package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ScheduleAlert is what a schedule alert (EventStartMissed, EventStartedLate,
// EventRunLate) tells: which pipeline and date, what was expected when, and
// how late it is.
type ScheduleAlert struct {
	Pipeline string `json:"pipeline"`
	Date     string `json:"date"`
	TimeZone string `json:"time_zone"`
	// Expected is the scheduled time (missed start, started late) or the
	// deadline (late run).
	Expected time.Time `json:"expected"`
	// Late is how late the run is (or started) at the time of the alert.
	Late time.Duration `json:"late"`
	// Step, StepStatus and StepSince name the step a late run is in and how
	// long it has been there (empty when no step has started).
	Step       string        `json:"step,omitempty"`
	StepStatus StepStatus    `json:"step_status,omitempty"`
	StepSince  time.Duration `json:"step_since,omitempty"`
	// Causes are the likely causes of a missed start, and Check the command
	// that checks them.
	Causes []string `json:"causes,omitempty"`
	Check  string   `json:"check,omitempty"`
}

// Keys of Run.Notes owned by the schedule checks.
const (
	// NoteDeadline holds the run's deadline (RFC 3339) once the sweeper has
	// seen the run, so that its completion message can say how late it
	// finished.
	NoteDeadline = "schedule.deadline"
	// NoteLate holds the state of the run's late alert (see alertState).
	NoteLate = "schedule.late"
	// NoteStartedLate holds how late the run started (a Go duration) when its
	// start was reported missed.
	NoteStartedLate = "schedule.started_late"
)

// Fields of a missed-start Mark.
const (
	markExpected = "expected" // the scheduled time, RFC 3339
	markAlert    = "alert"    // the missed-start alert's state (see alertState)
	markFollowUp = "followup" // the started-late follow-up's state
)

// missedStartCauses are the usual reasons a Scheduler job does not call.
var missedStartCauses = []string{
	"the Cloud Scheduler job is paused or was deleted",
	"the job's service account lost roles/run.invoker, or its OIDC audience changed",
	"the service refused or failed the start (see its logs)",
}

// alertGrace is how long an instance that claimed an alert has to send it
// before another tick sends it instead.
const alertGrace = 2 * time.Minute

// An alert's state, kept in a Mark field or a Run note: "" (not sent),
// "owed:<unix ns>" (claimed by an instance at that time, being sent) or
// "sent". An alert is sent after its claim is committed and recorded as sent
// after the notifier took it: at least once, and once unless an instance dies
// between the two.
const alertSent = "sent"

// alertDue says whether an alert in state st should be claimed now.
func alertDue(st string, now time.Time) bool {
	if st == "" {
		return true
	}
	rest, ok := strings.CutPrefix(st, "owed:")
	if !ok {
		return false // sent
	}
	ns, err := strconv.ParseInt(rest, 10, 64)
	return err != nil || now.Sub(time.Unix(0, ns)) > alertGrace
}

// alertOwed is the state of an alert claimed at now.
func alertOwed(now time.Time) string { return fmt.Sprintf("owed:%d", now.UnixNano()) }

// Late reports how late a finished run of a pipeline with a deadline was, from
// its NoteDeadline: the time past the deadline, or false when it finished in
// time or has no recorded deadline.
func Late(r Run) (time.Duration, time.Time, bool) {
	dl, err := time.Parse(time.RFC3339, r.Notes[NoteDeadline])
	if err != nil || r.FinishedAt.IsZero() || !r.FinishedAt.After(dl) {
		return 0, time.Time{}, false
	}
	return r.FinishedAt.Sub(dl), dl, true
}
