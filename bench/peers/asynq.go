package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

type stepPayload struct {
	Chain string `json:"chain"`
	Step  int    `json:"step"`
}

// runAsynq runs the workload on asynq against the Redis at addr; mode names
// the Redis configuration (in-memory or fsync always) for the output.
func runAsynq(ctx context.Context, addr, mode string, steps, n, conc int) (result, error) {
	redis := asynq.RedisClientOpt{Addr: addr}
	client := asynq.NewClient(redis)
	defer client.Close()
	c := newChains(steps)
	enqueue := func(p stepPayload) error {
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		_, err = client.EnqueueContext(ctx, asynq.NewTask("step", b), asynq.MaxRetry(3))
		return err
	}
	srv := asynq.NewServer(redis, asynq.Config{
		Concurrency: 100,
		// asynq sleeps this long when it finds its queues empty (default
		// 1 s): the smallest value keeps it from idling between steps.
		TaskCheckInterval: time.Millisecond,
		LogLevel:          asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc("step", func(ctx context.Context, t *asynq.Task) error {
		var p stepPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("payload: %w", err)
		}
		c.started(p.Chain, p.Step)
		if p.Step+1 < steps {
			return enqueue(stepPayload{Chain: p.Chain, Step: p.Step + 1})
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		return result{}, fmt.Errorf("asynq server: %w", err)
	}
	defer srv.Shutdown()
	wall, err := runChains(c, n, conc, func(id string) error { return enqueue(stepPayload{Chain: id}) })
	if err != nil {
		return result{}, err
	}
	return result{peer: "asynq", mode: mode, chains: n, concurrent: conc, wall: wall, gaps: c.gaps(), steps: steps}, nil
}
