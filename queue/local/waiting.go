package local

import (
	"slices"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// WaitingTask is a task waiting for delivery: due now, or scheduled later
// (a first delivery with a delay, or a retry after backoff).
type WaitingTask struct {
	Task pipeline.Task
	// ETA is when the next delivery is due.
	ETA       time.Time
	CreatedAt time.Time
	// Attempts counts failed deliveries so far.
	Attempts  int
	LastError string
}

// Waiting lists the tasks waiting for delivery, soonest first. Tasks being
// delivered right now are not listed (Pending counts them).
func (q *Queue) Waiting() []WaitingTask {
	q.mu.Lock()
	out := make([]WaitingTask, 0, len(q.tasks))
	for _, r := range q.tasks {
		out = append(out, WaitingTask{
			Task:      pipeline.Task{Name: r.Name, Payload: r.Payload, Deadline: r.Deadline},
			ETA:       r.ETA,
			CreatedAt: r.Created,
			Attempts:  r.Attempts,
			LastError: r.LastError,
		})
	}
	q.mu.Unlock()
	slices.SortFunc(out, func(a, b WaitingTask) int { return a.ETA.Compare(b.ETA) })
	return out
}
