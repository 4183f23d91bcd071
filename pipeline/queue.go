package pipeline

import (
	"context"
	"time"
)

// Queue delivers step tasks to the service's step route, at least once.
// Enqueueing a task whose Name was used before is not an error: it is how
// successor enqueue stays idempotent (a backend maps "already exists" to nil).
type Queue interface {
	Enqueue(ctx context.Context, t Task) error
}

// Task is one step delivery: an HTTP POST of Payload as JSON to
// /pipeline/steps/{Payload.Step}.
type Task struct {
	// Name is the deterministic task name (see TaskName).
	Name string
	// Payload is the JSON body.
	Payload TaskPayload
	// Deadline is how long the delivery may take before the queue gives up on
	// it (the step timeout plus a margin). Backends clamp it to what they allow.
	Deadline time.Duration
	// Delay postpones the first delivery.
	Delay time.Duration
}

// TaskPayload is the JSON body of a step task.
type TaskPayload struct {
	RunID      string `json:"run_id"`
	Step       string `json:"step"`
	Generation int    `json:"generation"`
	// Date and Params are the run's, copied into every task so that a step
	// transition needs no read of the run record.
	Date   string            `json:"date"`
	Params map[string]string `json:"params,omitempty"`
	// DefinitionVersion is the version of the run's graph (Run.Graph), so
	// that the handler finds the graph without reading the run. A hint: the
	// run record is the truth.
	DefinitionVersion string `json:"definition_version,omitempty"`
	// Force says an operator forced this generation; informational: the
	// handler trusts only the step record's Forced.
	Force bool `json:"force,omitempty"`
	// Only runs the step without chaining on to its successors; the handler
	// also honours the step record's Only.
	Only bool `json:"only,omitempty"`
	// Check numbers a check task of an asynchronous step (see
	// steps.AsyncStep); 0 is the step's own task.
	Check int `json:"check,omitempty"`
}

// Path is the service route the task is delivered to.
func (p TaskPayload) Path() string { return "/pipeline/steps/" + p.Step }
