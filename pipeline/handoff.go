package pipeline

import (
	"context"
	"time"
)

// ClaimFunc decides whether the successor step succ (as stored) is claimed
// in a hand-off's transaction, and returns its claim record. It is pure: it
// may run more than once, and before the transaction on the record stored
// then (the ledger writes such a decision only if the record is unchanged
// when the transaction reads it).
type ClaimFunc func(succ StepRun) (claim StepRun, ok bool)

// HandOff is an optional capability of a Transitioner (local mode: the
// ledger and the local queue share one bbolt file): a linear step's
// transition also claims its successors for their first attempt, so that a
// linear step costs one commit instead of two (its transition, which writes
// its successor's claim; no claim commit of its own). The gcp backend does
// not implement it.
type HandOff interface {
	Transitioner
	// TransitionHandOff commits what Transition commits and, in the same
	// transaction, for each task's step (the task's run and step), the
	// record claim returns for it, written over the stored record it was
	// given (a missing step, or claim answering false, writes nothing of
	// that step). All or nothing. It returns s with its new Version and the
	// successors' claim records as stored (with their Versions).
	TransitionHandOff(ctx context.Context, s StepRun, tasks []Task, handled Task, claim ClaimFunc) (StepRun, []StepRun, error)
}

// claimRecord is the record of cur claimed at now for an attempt whose
// lease lasts lease, having consumed preds' outputs: one attempt at a time,
// counted before its body runs (unless restart: an asynchronous start
// begun again within its attempt). The claim of a delivery and the claim a
// predecessor's hand-off writes are both this record.
func claimRecord(cur StepRun, preds []StepRun, restart bool, now time.Time, lease time.Duration) StepRun {
	claim := cur
	claim.Status = StepRunning
	if !restart {
		claim.Attempts++
		claim.StartedAt = now
	}
	claim.FinishedAt = time.Time{}
	claim.LeaseUntil = now.Add(lease)
	claim.UpdatedAt = now
	claim.Inputs = consumed(preds)
	return claim
}

// handOff is what a predecessor's hand-off decides a successor's claim on:
// the predecessor pred as it is being written (succeeded), the successor
// succ as stored, the generation of the successor's task, and the claim's
// time and lease.
type handOff struct {
	Pred  StepRun
	Succ  StepRun
	Gen   int
	Now   time.Time
	Lease time.Duration
}

// handOffClaim decides whether a predecessor's transition may claim its
// successor's first attempt, from the recorded state alone, and returns the
// claim. It claims exactly when the successor's own delivery would claim it
// at once without reading the run (decide: actClaim, not a take-over) with
// pred as its only predecessor: pred succeeded, the successor is in the
// task's first generation, has no attempt counted yet (a later attempt reads
// the run first, which a cancel may have ended), is pending (or released,
// retrying with no attempt counted), and has an attempt to give. One thing
// more: it has more than one attempt, since a process killed between this
// commit and the successor's body costs the attempt handed off (it is
// taken over after its lease), and a step's only attempt is never spent
// that way. Anything else (running, waiting, succeeded, failed, cancelled,
// skipped, a re-run generation, a single attempt) is left to the
// successor's delivery.
func handOffClaim(h handOff) (StepRun, bool) {
	s := h.Succ
	switch {
	case h.Pred.Status != StepSucceeded:
		return StepRun{}, false
	case h.Gen != 1 || s.Generation != h.Gen:
		return StepRun{}, false
	case s.Status != StepPending && s.Status != StepRetrying:
		return StepRun{}, false
	case s.Attempts != 0 || s.MaxAttempts < 2:
		return StepRun{}, false
	}
	return claimRecord(s, []StepRun{h.Pred}, false, h.Now, h.Lease), true
}
