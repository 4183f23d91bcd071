package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RunStatus is the state of a run.
type RunStatus string

// Run states. Succeeded, Failed and Cancelled are terminal.
const (
	RunPending   RunStatus = "pending"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Terminal reports whether no step of a run in this state starts any more.
func (s RunStatus) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

// StepStatus is the state of one step of a run.
type StepStatus string

// Step states. Succeeded, Failed, Cancelled and Skipped are terminal.
const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepRetrying  StepStatus = "retrying" // an attempt failed transiently; the queue retries
	StepWaiting   StepStatus = "waiting"  // an asynchronous step started its work; check tasks follow it
	StepSucceeded StepStatus = "succeeded"
	StepFailed    StepStatus = "failed"
	StepCancelled StepStatus = "cancelled"
	StepSkipped   StepStatus = "skipped"
)

// Terminal reports whether the step will not run again without an operator.
func (s StepStatus) Terminal() bool {
	switch s {
	case StepSucceeded, StepFailed, StepCancelled, StepSkipped:
		return true
	}
	return false
}

// NotifyState tracks the final notification of a run through the ledger so that
// it is sent after the commit, once, even across crashes and duplicates.
type NotifyState string

// Notification states of a run.
const (
	NotifyNone    NotifyState = ""        // nothing owed
	NotifyPending NotifyState = "pending" // the run ended; its notification is owed
	NotifyDone    NotifyState = "done"    // the notification was handed to the notifier
)

// Run is one execution of a pipeline, identified by pipeline + key.
type Run struct {
	ID       string            `json:"run_id"`
	Pipeline string            `json:"pipeline"`
	Key      string            `json:"key"`  // the run key: the run date unless given
	Date     string            `json:"date"` // YYYY-MM-DD in the pipeline's time zone
	Params   map[string]string `json:"params,omitempty"`
	Status   RunStatus         `json:"status"`
	Error    string            `json:"error,omitempty"`
	// Trigger says who started the run: "scheduler", "cli", "api", "cron".
	Trigger   string    `json:"trigger,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// StartedAt is when the run last started (launched, or reopened by an
	// operator): max_run_duration counts from it.
	StartedAt  time.Time   `json:"started_at,omitzero"`
	FinishedAt time.Time   `json:"finished_at,omitzero"`
	Notify     NotifyState `json:"-"`
	// Notes is state owned by notifiers (e.g. the Discord message that shows
	// the run), kept in the ledger so it survives restarts and is shared by
	// every instance. Written with UpdateRun like any other run field.
	Notes map[string]string `json:"-"`
	// DefinitionVersion identifies the definition the run was created from
	// (Graph.Version); empty for runs recorded before runs kept their graph.
	DefinitionVersion string `json:"definition_version,omitempty"`
	// Graph is the run's own step graph, recorded by CreateRun and never
	// changed afterwards: the run is driven by it, whatever is deployed now.
	// Nil for runs recorded before runs kept their graph (the loaded
	// definition drives those).
	Graph *Graph `json:"-"`
	// Epoch counts the times an operator reopened the run (force, resume,
	// enqueue). Every reopen writes the run, so that a finish decided on an
	// older read conflicts and is decided again on fresh step states.
	Epoch int64 `json:"epoch,omitempty"`
	// Version is the ledger's concurrency token: UpdateRun succeeds only when it
	// matches the stored one. Opaque to the domain.
	Version int64 `json:"-"`
	// WriteID identifies the write that stored this version of the record
	// (set by the ledger on every write), so that a writer whose reply was
	// lost can recognise the stored record as its own write.
	WriteID string `json:"-"`
	// Marks are the run's schedule marks (RunMarks), filled for readers of the
	// API; the ledger does not store them.
	Marks []string `json:"marks,omitempty"`
	// Summary is written once when the run finishes: each step's status,
	// attempts and duration, so that listings need not read the steps.
	Summary []StepSummary `json:"summary,omitempty"`
	// Steps is filled by Ledger.GetRun, in definition order where known.
	Steps []StepRun `json:"steps,omitempty"`
}

// StepRun is the ledger's record of one step of one run.
type StepRun struct {
	RunID       string     `json:"-"`
	Step        string     `json:"step"`
	Status      StepStatus `json:"status"`
	Generation  int        `json:"generation"`
	Attempts    int        `json:"attempts"`
	MaxAttempts int        `json:"max_attempts"`
	// LeaseUntil is when the running attempt's claim expires.
	LeaseUntil time.Time       `json:"lease_until,omitzero"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	UpdatedAt  time.Time       `json:"updated_at,omitzero"`
	Error      string          `json:"error,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Forced     bool            `json:"forced,omitempty"`
	// Only says an operator enqueued this generation with --only: it runs
	// without chaining on to its successors. Kept in the record so that
	// every re-enqueue (retries, the sweeper) keeps it.
	Only bool `json:"only,omitempty"`
	// Inputs records, per predecessor, the generation of its output this
	// attempt consumed (0: it had none, the step was forced past it). A
	// step is stale exactly when a predecessor has a newer succeeded
	// generation than the one it consumed.
	Inputs map[string]int `json:"inputs,omitempty"`
	// AsyncState is an asynchronous step's state while it waits (what its
	// kind's Check needs), Check the number of the check task due next,
	// WaitingSince when its attempt started waiting (the step's timeout
	// bounds the wait from there), NextCheckAt when that check is due and
	// Link a pointer to the remote work. Cleared by a new generation.
	AsyncState   json.RawMessage `json:"async_state,omitempty"`
	Check        int             `json:"check,omitempty"`
	WaitingSince time.Time       `json:"waiting_since,omitzero"`
	NextCheckAt  time.Time       `json:"next_check_at,omitzero"`
	Link         string          `json:"link,omitempty"`
	// History is the step's attempts, oldest first, at most MaxHistory of
	// them, across generations. Ledgers keep it in step with the current
	// attempt in the write that records its start or end (WithHistory).
	History []Attempt `json:"history,omitempty"`
	// RunInput is the digest of the run's date and params,
	// written when the run is created: a task's date and params are checked
	// against it without reading the run.
	RunInput string `json:"-"`
	// WaitedMillis is how long a waiting step has waited, filled by the API
	// when it answers (not stored).
	WaitedMillis int64 `json:"waited_ms,omitempty"`
	// Version is the ledger's concurrency token: UpdateStep succeeds only when it
	// matches the stored one. Opaque to the domain.
	Version int64 `json:"-"`
	// WriteID identifies the write that stored this version (see Run.WriteID).
	WriteID string `json:"-"`
}

// Duration is how long the run's latest execution took: from StartedAt (its
// launch, or the operator's re-run that reopened it) to FinishedAt. Zero
// while the run is not finished. A re-run weeks later therefore reports the
// re-run's own time, not the weeks between. Records without StartedAt (a run
// cancelled before it launched) count from CreatedAt.
func (r Run) Duration() time.Duration {
	start := r.StartedAt
	if start.IsZero() {
		start = r.CreatedAt
	}
	if r.FinishedAt.IsZero() || start.IsZero() || r.FinishedAt.Before(start) {
		return 0
	}
	return r.FinishedAt.Sub(start)
}

// WorkDuration is the sum of the durations of its steps' last attempts: the
// time the run's steps took, whatever the calendar time between them (queue
// waits, or an operator's re-run of one step weeks later, which replaces only
// that step's figure). Stats use it.
func (r Run) WorkDuration() time.Duration {
	var sum time.Duration
	for _, s := range r.Steps {
		sum += s.Duration()
	}
	return sum
}

// Duration is how long the step's last attempt ran, or zero.
func (s StepRun) Duration() time.Duration {
	if s.StartedAt.IsZero() || s.FinishedAt.IsZero() {
		return 0
	}
	return s.FinishedAt.Sub(s.StartedAt)
}

// ValidKey reports whether k can be a run key (keyPattern).
func ValidKey(k string) bool { return validKey(k) }

// RunID is the identifier of the run of pipeline p with key k.
func RunID(p, key string) string { return p + "@" + key }

// SplitRunID is the inverse of RunID.
func SplitRunID(id string) (pipeline, key string, err error) {
	p, k, ok := strings.Cut(id, "@")
	if !ok || !validName(p) || !ValidKey(k) {
		return "", "", fmt.Errorf("%w: run id %q is not PIPELINE@KEY", ErrInvalid, id)
	}
	return p, k, nil
}

// TaskName is the deterministic queue task name of a step of a run in a
// generation, in no ledger namespace: TaskNameIn("", ...).
func TaskName(runID, step string, generation int) string {
	return TaskNameIn("", runID, step, generation)
}

// TaskNameIn is the deterministic queue task name of a step of a run in a
// generation, for the ledger namespace ns (see Namespacer): two ledgers that
// share a queue (staging and prod collections, two databases) never share a
// name. It starts with a hash so that names do not share prefixes (Cloud
// Tasks hot-spots on sequential prefixes), and it fits [A-Za-z0-9_-]{1,500}.
func TaskNameIn(ns, runID, step string, generation int) string {
	// Built in place (one allocation for the name): a step computes its
	// successors' names on every transition.
	var kb [256]byte
	key := kb[:0]
	if ns != "" {
		key = append(append(key, ns...), 0)
	}
	key = append(append(key, runID...), 0)
	key = append(append(key, step...), 0)
	key = strconv.AppendInt(key, int64(generation), 10)
	sum := sha256.Sum256(key)
	var nb [160]byte
	name := hex.AppendEncode(nb[:0], sum[:8])
	name = append(name, '-')
	name = appendSanitized(name, step)
	name = append(name, "-g"...)
	name = strconv.AppendInt(name, int64(generation), 10)
	return string(name)
}

// sanitizeName maps s into [A-Za-z0-9_-] (one '_' per other rune), cut
// once it reaches 100 bytes.
func sanitizeName(s string) string {
	return string(appendSanitized(nil, s))
}

// appendSanitized appends sanitizeName(s) to b.
func appendSanitized(b []byte, s string) []byte {
	start := len(b)
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
		if len(b)-start >= 100 {
			break
		}
	}
	return b
}
