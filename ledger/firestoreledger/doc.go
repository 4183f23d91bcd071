// Package firestoreledger is the Firestore backend of pipeline.Ledger.
//
// Layout: one document per run in a configurable collection (by default
// "pipeline_runs"), keyed by the run ID, and one document per step in the
// run's "steps" subcollection, keyed by the step name. Parallel steps of a run
// therefore never contend on one document.
//
// No hot path uses a transaction (Firestore transactions take pessimistic locks
// and a conflict costs seconds on the emulator). CreateRun is one atomic batch
// of preconditioned creates; UpdateStep and UpdateRun are single updates with a
// last-update-time precondition, and a record's Version is its document's
// update time in Unix nanoseconds.
//
// Cost per call: GetSteps reads one document per step asked, UpdateStep and
// UpdateRun write one document, CreateRun writes 1+len(steps) documents, GetRun
// reads the run and its steps, ListRuns reads at most Limit documents. A
// write that loses its precondition costs one more read, to tell
// pipeline.ErrConflict from pipeline.ErrNotFound (Firestore answers
// FailedPrecondition to both).
//
// ListRuns needs these composite indexes in production (ascending equality,
// descending created_at), on the run collection:
//
//	pipeline ASC, created_at DESC
//	status ASC, created_at DESC
//	pipeline ASC, status ASC, created_at DESC
//
// Ordering by created_at alone uses Firestore's automatic single-field index.
package firestoreledger
