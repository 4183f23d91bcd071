package pipeline

import (
	"fmt"
	"time"
)

// MarkKind says what a Mark records.
type MarkKind string

// Kinds of marks.
const (
	// MarkPause records that a pipeline is paused (or was, and by whom it was
	// resumed): one per pipeline, key "".
	MarkPause MarkKind = "pause"
	// MarkMissedStart records the missed-start alert of a pipeline and date
	// (its key) and its follow-up, so that each is sent once.
	MarkMissedStart MarkKind = "missed_start"
)

// Mark is a small record kept by the ledger beside the runs, for facts about a
// pipeline rather than a run: a pipeline's pause, or the alert sent because a
// date's run did not start. It is written like a run, by compare-and-swap on
// Version, so that every instance and every sweeper tick agree on it.
type Mark struct {
	// ID is MarkID(Kind, Pipeline, Key).
	ID       string   `json:"id"`
	Kind     MarkKind `json:"kind"`
	Pipeline string   `json:"pipeline"`
	Key      string   `json:"key,omitempty"`
	// Fields is the kind's own state (who paused and why, the alert's state).
	Fields    map[string]string `json:"fields,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Version is the ledger's concurrency token, as for runs.
	Version int64 `json:"-"`
}

// MarkID is the identifier of the mark of kind for pipeline and key. It holds
// no "/" so that it is a valid document ID everywhere.
func MarkID(kind MarkKind, pipeline, key string) string {
	if key == "" {
		return fmt.Sprintf("%s:%s", kind, pipeline)
	}
	return fmt.Sprintf("%s:%s:%s", kind, pipeline, key)
}

// NewMark returns the mark of kind for pipeline and key, created at now.
func NewMark(kind MarkKind, pipeline, key string, now time.Time) Mark {
	return Mark{
		ID: MarkID(kind, pipeline, key), Kind: kind, Pipeline: pipeline, Key: key,
		Fields: map[string]string{}, CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
	}
}
