package pipeline_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// The definitions a deploy swaps in while chain@2026-11-23 runs under
// chainYAML (a -> b -> c).
const (
	chainPlusD = chainYAML + `  - name: d
    kind: d
`
	chainWithoutC = `
name: chain
time_zone: Europe/Paris
schedule: "0 6 * * *"
steps:
  - {name: a, kind: a, after: [], max_attempts: 3}
  - {name: b, kind: b}
`
	chainCAfterA = `
name: chain
time_zone: Europe/Paris
schedule: "0 6 * * *"
steps:
  - {name: a, kind: a, after: [], max_attempts: 3}
  - {name: b, kind: b, after: [a]}
  - {name: c, kind: c, after: [a]}
`
)

// deliverOne delivers the first queued task of step and fails on an error.
func deliverOne(t *testing.T, h *harness, step string) pipeline.StepResult {
	t.Helper()
	var rest []pipeline.Task
	var res pipeline.StepResult
	found := false
	for _, task := range h.queue.take() {
		if found || task.Payload.Step != step {
			rest = append(rest, task)
			continue
		}
		found = true
		var err error
		if res, err = h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name}); err != nil {
			t.Fatalf("deliver %s: %v", step, err)
		}
	}
	if !found {
		t.Fatalf("no task of %s queued", step)
	}
	for _, task := range rest {
		h.queue.mu.Lock()
		h.queue.tasks = append(h.queue.tasks, task)
		h.queue.mu.Unlock()
	}
	return res
}

// A run keeps the definition it started with: a deploy that adds a step,
// removes one or changes an `after` while the run is in flight changes
// nothing for it; it finishes under its original graph. New runs use the new
// definition.
func TestRunKeepsItsDefinitionAcrossADeploy(t *testing.T) {
	cases := []struct {
		name, next string
	}{
		{"added step", chainPlusD},
		{"removed step", chainWithoutC},
		{"changed after", chainCAfterA},
	}
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarnessOn(t, chainYAML, led)
				key := strings.ReplaceAll(tc.name, " ", "-")
				start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23", Key: key})
				if err != nil {
					t.Fatal(err)
				}
				oldVersion := start.Run.DefinitionVersion
				if oldVersion == "" || oldVersion != h.orch.Catalog().Get("chain").Graph().Version {
					t.Fatalf("run's definition version %q, loaded %q", oldVersion, h.orch.Catalog().Get("chain").Graph().Version)
				}
				deliverOne(t, h, "a")

				h.deploy(tc.next) // a new revision serves the rest of the run
				newVersion := h.orch.Catalog().Get("chain").Graph().Version
				if newVersion == oldVersion {
					t.Fatal("the new definition has the old version")
				}
				// b runs, then c after b (not after a); d never runs.
				deliverOne(t, h, "b")
				if tasks := h.queue.take(); len(tasks) != 1 || tasks[0].Payload.Step != "c" {
					t.Fatalf("after b: queued %+v, want c only", tasks)
				} else {
					h.queue.mu.Lock()
					h.queue.tasks = tasks
					h.queue.mu.Unlock()
				}
				h.drain(20)
				r := h.run(start.Run.ID)
				if r.Status != pipeline.RunSucceeded {
					t.Fatalf("run %s %q; steps %+v", r.Status, r.Error, r.Steps)
				}
				if r.DefinitionVersion != oldVersion {
					t.Fatalf("run definition version %q, want %q", r.DefinitionVersion, oldVersion)
				}
				if len(r.Steps) != 3 {
					t.Fatalf("run has %d steps, want a, b, c", len(r.Steps))
				}
				for name, want := range map[string]int64{"a": 1, "b": 1, "c": 1, "d": 0} {
					if got := h.bodies[name].runs.Load(); got != want {
						t.Errorf("%s ran %d times, want %d", name, got, want)
					}
				}
				if h.events.count(pipeline.EventRunSucceeded) != 1 {
					t.Errorf("%d run-succeeded notifications, want 1", h.events.count(pipeline.EventRunSucceeded))
				}

				// Re-runs follow the run's graph too: a forced c runs c
				// (even where the new definition has no c) and nothing else.
				if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: r.ID, Step: "c", Force: true}); err != nil {
					t.Fatalf("forced re-run of c: %v", err)
				}
				h.drain(20)
				if r := h.run(r.ID); r.Status != pipeline.RunSucceeded || h.bodies["c"].runs.Load() != 2 || h.bodies["d"].runs.Load() != 0 {
					t.Fatalf("after forced c: run %s %q, c ran %d, d ran %d", r.Status, r.Error, h.bodies["c"].runs.Load(), h.bodies["d"].runs.Load())
				}

				// A new run uses the new definition.
				next, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-24", Key: key + "-next"})
				if err != nil {
					t.Fatal(err)
				}
				if next.Run.DefinitionVersion != newVersion {
					t.Fatalf("new run's definition version %q, want %q", next.Run.DefinitionVersion, newVersion)
				}
				h.drain(20)
				nr := h.run(next.Run.ID)
				if nr.Status != pipeline.RunSucceeded || len(nr.Steps) != len(h.orch.Catalog().Get("chain").Steps) {
					t.Fatalf("new run %s with %d steps", nr.Status, len(nr.Steps))
				}
			})
		}
	})
}

// The sweeper drives a run by its own graph: a step the new definition
// removed is still re-enqueued when its task was lost.
func TestSweeperFollowsTheRunsGraph(t *testing.T) {
	h := newHarness(t, chainYAML)
	start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	deliverOne(t, h, "a")
	deliverOne(t, h, "b")
	h.queue.take() // c's task is lost
	h.deploy(chainWithoutC)
	h.advance(20 * time.Minute)
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.Reenqueued) != 1 || rep.Reenqueued[0] != start.Run.ID+"/c" {
		t.Fatalf("reconcile = %+v, %v", rep, err)
	}
	h.drain(20)
	if r := h.run(start.Run.ID); r.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s %q", r.Status, r.Error)
	}
}

// A step whose kind the serving binary no longer registers fails for good,
// with an error naming the kind, and fails its run.
func TestStepOfAKindNoLongerRegisteredFailsNamingTheKind(t *testing.T) {
	h := newHarness(t, chainYAML)
	start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	deliverOne(t, h, "a")
	// The new binary dropped kind c (and the step using it).
	reg := steps.NewRegistry()
	for _, k := range []string{"a", "b"} {
		c := h.bodies[k]
		reg.Register(k, func(map[string]any) (steps.Step, error) { return c, nil })
	}
	h.reg = reg
	h.deploy(chainWithoutC)
	h.drain(20)
	r := h.run(start.Run.ID)
	c := stepOf(r, "c")
	if r.Status != pipeline.RunFailed || c.Status != pipeline.StepFailed || !strings.Contains(c.Error, `kind "c"`) || !strings.Contains(c.Error, "not registered") {
		t.Fatalf("run %s %q; c %s %q", r.Status, r.Error, c.Status, c.Error)
	}
	if c.Attempts != 0 || h.bodies["c"].runs.Load() != 0 {
		t.Fatalf("c attempts %d, ran %d", c.Attempts, h.bodies["c"].runs.Load())
	}
}

// The run's definition version is part of its JSON (the API and the CLI).
func TestRunJSONShowsItsDefinitionVersion(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-23")
	b, err := json.Marshal(h.run(id))
	if err != nil {
		t.Fatal(err)
	}
	want := `"definition_version":"` + h.orch.Catalog().Get("chain").Graph().Version + `"`
	if !strings.Contains(string(b), want) {
		t.Fatalf("run JSON %s lacks %s", b, want)
	}
}
