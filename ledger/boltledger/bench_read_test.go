package boltledger_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// benchRunSteps is the number of steps of BenchmarkGetRun's run.
const benchRunSteps = 10

// BenchmarkGetRun reads a run of 10 steps, with its graph, as the orchestrator
// does when a run ends; BenchmarkGetSteps reads one step, as a delivery does.
// Both read records read before (what a decode cache saves).
func BenchmarkGetRun(b *testing.B) {
	ctx, l := b.Context(), openTemp(b)
	id := createBenchRun(b, l)
	for b.Loop() {
		if _, err := l.GetRun(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetSteps(b *testing.B) {
	ctx, l := b.Context(), openTemp(b)
	id := createBenchRun(b, l)
	for b.Loop() {
		if _, err := l.GetSteps(ctx, id, "s3"); err != nil {
			b.Fatal(err)
		}
	}
}

// createBenchRun creates a run of benchRunSteps steps, each succeeded with
// an output and a history, with a graph.
func createBenchRun(b *testing.B, l pipeline.Ledger) string {
	b.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var gs []map[string]any
	var steps []pipeline.StepRun
	for i := range benchRunSteps {
		name := fmt.Sprintf("s%d", i)
		g := map[string]any{"name": name, "kind": "noop", "timeout": 0, "max_attempts": 3, "settings": map[string]any{"n": i}}
		s := pipeline.StepRun{Step: name, Status: pipeline.StepSucceeded, Generation: 1, Attempts: 1, MaxAttempts: 3,
			StartedAt: now, FinishedAt: now, UpdatedAt: now, Output: json.RawMessage(`{"rows":42,"table":"t"}`)}
		if i > 0 {
			prev := fmt.Sprintf("s%d", i-1)
			g["after"] = []string{prev}
			s.Inputs = map[string]int{prev: 1}
		}
		gs = append(gs, g)
		steps = append(steps, s.WithHistory())
	}
	raw, err := json.Marshal(map[string]any{"version": "v", "time_zone": "UTC", "max_run_duration": 0, "steps": gs})
	if err != nil {
		b.Fatal(err)
	}
	graph := new(pipeline.Graph)
	if err := json.Unmarshal(raw, graph); err != nil {
		b.Fatal(err)
	}
	r := pipeline.Run{ID: "bench@1", Pipeline: "bench", Key: "1", Status: pipeline.RunRunning, CreatedAt: now,
		Params: map[string]string{"p": "v"}, DefinitionVersion: "v", Graph: graph}
	if _, _, err := l.CreateRun(b.Context(), r, steps); err != nil {
		b.Fatal(err)
	}
	return r.ID
}
