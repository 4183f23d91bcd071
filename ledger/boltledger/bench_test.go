package boltledger_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// BenchmarkStepTransition measures the ledger writes of one step transition —
// UpdateStep to claim the step, UpdateStep to record its success — with
// concurrent writers on distinct runs sharing commits, and reports
// transitions/s. ns/op at 1 writer is the idle latency of a transition (two
// durable commits).
func BenchmarkStepTransition(b *testing.B) {
	for _, writers := range []int{1, 50} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			ctx, l := b.Context(), openTemp(b)
			var seq atomic.Int64
			newStep := func() pipeline.StepRun {
				n := seq.Add(1)
				r := pipeline.Run{ID: fmt.Sprintf("bench@%d", n), Pipeline: "bench", Key: fmt.Sprint(n),
					Status: pipeline.RunRunning, CreatedAt: time.Now()}
				steps := []pipeline.StepRun{{RunID: r.ID, Step: "s", Status: pipeline.StepPending, Generation: 1, MaxAttempts: 3}}
				if _, _, err := l.CreateRun(ctx, r, steps); err != nil {
					b.Fatalf("CreateRun: %v", err)
				}
				st, err := l.GetSteps(ctx, r.ID, "s")
				if err != nil {
					b.Fatalf("GetSteps: %v", err)
				}
				return st[0]
			}
			if writers == 1 { // RunParallel would start GOMAXPROCS writers
				s := newStep()
				for b.Loop() {
					s = transition(b, l, s)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transitions/s")
				return
			}
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				s := newStep()
				for pb.Next() {
					s = transition(b, l, s)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transitions/s")
		})
	}
}

// transition claims s and records its success, as the orchestrator does, and
// returns the step ready for its next transition.
func transition(b *testing.B, l pipeline.Ledger, s pipeline.StepRun) pipeline.StepRun {
	ctx := b.Context()
	now := time.Now()
	s.Status, s.Attempts, s.StartedAt, s.LeaseUntil, s.UpdatedAt = pipeline.StepRunning, s.Attempts+1, now, now.Add(time.Minute), now
	s, err := l.UpdateStep(ctx, s)
	if err != nil {
		b.Fatalf("claim: %v", err)
	}
	s.Status, s.FinishedAt, s.LeaseUntil, s.Output = pipeline.StepSucceeded, time.Now(), time.Time{}, []byte(`{"ok":true}`)
	s, err = l.UpdateStep(ctx, s)
	if err != nil {
		b.Fatalf("complete: %v", err)
	}
	return s
}
