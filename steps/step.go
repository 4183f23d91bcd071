// Package steps holds the Step interface that every step kind implements, the
// registry that maps a pipeline file's `kind` to a constructor and the
// built-in kinds (http, noop, sleep); the example steps of the daily chain are
// in steps/example.
package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Step is the body of one step kind, configured for one step of a pipeline.
// Run returns the step's output (any JSON, may be nil) or an error. Errors are
// transient (retried up to the step's attempt limit) unless marked Permanent.
type Step interface {
	Run(ctx context.Context, in Input) (json.RawMessage, error)
}

// StepFunc adapts a function to Step.
type StepFunc func(ctx context.Context, in Input) (json.RawMessage, error)

// Run calls f.
func (f StepFunc) Run(ctx context.Context, in Input) (json.RawMessage, error) { return f(ctx, in) }

// Input is what a step is given for one attempt.
type Input struct {
	// RunID is PIPELINE@KEY (see Key).
	RunID    string
	Pipeline string
	Step     string
	// Date is the run date (midnight in the pipeline's time zone).
	Date time.Time
	// Params are the run's parameters overlaid with the step's own.
	Params map[string]string
	// Inputs holds each direct predecessor's output, by step name.
	Inputs map[string]json.RawMessage
	// Attempt counts from 1; MaxAttempts is the step's limit.
	Attempt     int
	MaxAttempts int
	// Generation counts the step's runs in this run from 1 (an operator's
	// re-run is a new generation): with RunID, Step and Attempt it names an
	// attempt uniquely, for a remote API's client-chosen ID.
	Generation int
	// Namespace names the ledger the run is recorded in (its Firestore
	// collection path, or the embedded ledger file's own id): two
	// deployments, or a ledger deleted and created anew, have different
	// ones. A remote ID derived from RunID, Step, Generation and Attempt
	// should fold it in (see NamespaceTag), or another deployment's run of
	// the same pipeline and date meets it. Empty where unknown.
	Namespace string
}

// NamespaceTag is a short tag of in's Namespace (16 hex digits of its
// SHA-256), for IDs and keys that must differ between ledgers, or "" when
// the namespace is unknown.
func (in Input) NamespaceTag() string {
	if in.Namespace == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(in.Namespace))
	return hex.EncodeToString(sum[:8])
}

// Key is the run key, the part of RunID after the "@": the run date for a
// scheduled run, or the key an operator chose (run --key). Runs of one
// pipeline differ by key, not by date, so a step that keeps files per run
// names them by key. Empty when RunID has no key.
func (in Input) Key() string {
	_, k, _ := strings.Cut(in.RunID, "@")
	return k
}

// DateString is the run date as YYYY-MM-DD.
func (in Input) DateString() string { return in.Date.Format(time.DateOnly) }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the step fails at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or an error it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
