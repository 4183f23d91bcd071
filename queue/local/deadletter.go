package local

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// DeadLetter is a task that ran out of attempts. It is kept until an
// operator deals with it.
type DeadLetter struct {
	Task pipeline.Task
	// Attempts is how many deliveries failed.
	Attempts  int
	LastError string
	CreatedAt time.Time
	DiedAt    time.Time
}

// DeadLetters lists the dead-lettered tasks, by name.
func (q *Queue) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local queue: dead letters: %w", err)
	}
	var out []DeadLetter
	err := q.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			out = append(out, DeadLetter{
				Task:      pipeline.Task{Name: r.Name, Payload: r.Payload, Deadline: r.Deadline},
				Attempts:  r.Attempts,
				LastError: r.LastError,
				CreatedAt: r.Created,
				DiedAt:    r.Dead,
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("local queue: dead letters: %w", err)
	}
	return out, nil
}
