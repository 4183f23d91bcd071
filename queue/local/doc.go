// Package local implements pipeline.Queue as an in-process, durable
// dispatcher with Cloud Tasks semantics, stored in a bbolt database that it
// shares with the embedded ledger (its buckets are prefixed "queue_").
//
// Each task is delivered at least once as an HTTP POST of its JSON payload to
// BaseURL + Payload.Path() with the X-CloudTasks-* headers. A 2xx answer
// finishes the task; anything else (another status, a connection error, a
// timeout) is retried with exponential backoff, honouring Retry-After on 429
// and 503, until MaxAttempts deliveries have failed, when the task moves to a
// dead-letter bucket. A task name is refused (Enqueue returns nil and queues
// nothing) while the task is pending and for DedupWindow after it finished.
//
// Writes are group-committed: a write made while a commit is under way joins
// the next one, and an idle queue commits at once (bbolt's DB.Batch waits
// MaxBatchDelay first, about a millisecond in practice). Config.Commit can
// swap in DB.Batch or a committer shared with the ledger. A delivered task's
// deletion is not waited for: it rides with the next Enqueue's commit (in a
// chain, the successor's) or is flushed shortly after, so a step transition
// costs the queue one commit; a crash in between means one more delivery.
// With the ledger in the same file, TransitionWrites puts the successor's
// task and the deletion of the task being handled into the ledger's own
// transaction (boltledger.Store, pipeline.Transitioner): a linear step
// transition is then one commit for ledger and queue together.
//
// Pending tasks are also held in memory, in a heap keyed by their next
// delivery time; the dispatcher sleeps on a timer for the earliest one and is
// woken by Enqueue, so a task enqueued now is delivered at once. New loads
// every pending task from the database, so a restarted process finishes the
// tasks of the one that was killed.
package local
