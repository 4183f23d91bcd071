// Package boltledger is the embedded, durable pipeline.Ledger of local mode: one
// bbolt file, shareable with the local queue (each keeps its own buckets).
//
// Layout (bucket: key -> value; every value is an 8-byte big-endian version
// followed by the record as JSON):
//
//	ledger.runs:        run ID -> run, with its step names in creation order
//	ledger.steps:       uvarint(len(run ID)) run ID step -> step
//	ledger.runs.time:   created-at key, run ID -> (empty)     newest-first listing
//	ledger.runs.pipe:   uvarint(len(pipeline)) pipeline created-at key, run ID -> (empty)
//
// A created-at key is 12 bytes that sort like the instant (seconds with the
// sign bit flipped, then nanoseconds), so ListRuns walks an index backwards
// from the newest run and stops at Since or Limit instead of scanning.
//
// Versions are per-record counters, incremented on every write; the version
// check happens inside the write transaction. Writes go through a Committer:
// group commit without a timer, so an idle write costs one commit (about one
// fsync) and concurrent writers share commits. Write functions are idempotent
// because a shared transaction may be rolled back and rerun, and a lost
// compare-and-swap is reported without failing the shared transaction.
//
// Decoding records costs more than reading them, and the same stored bytes
// are read again and again (a step a transition claims is read by its
// delivery, a run by each of its updates), so a ledger keeps a small cache
// of decoded records keyed by their stored bytes (recordCache): coherent
// whoever writes the file, since a read still gets the stored value.
package boltledger
