package pipeline_test

import (
	"errors"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// forgedPayloads are tasks of step a of run chain@2026-11-23 (date
// 2026-11-23, params region=eu) whose date or params are not the run's: a
// hand-crafted or stale task.
func forgedPayloads(genuine pipeline.TaskPayload) map[string]pipeline.TaskPayload {
	with := func(f func(p *pipeline.TaskPayload)) pipeline.TaskPayload {
		p := genuine
		p.Params = maps.Clone(genuine.Params)
		f(&p)
		return p
	}
	return map[string]pipeline.TaskPayload{
		"other date":  with(func(p *pipeline.TaskPayload) { p.Date = "2026-11-24" }),
		"other param": with(func(p *pipeline.TaskPayload) { p.Params["region"] = "us" }),
		"extra param": with(func(p *pipeline.TaskPayload) { p.Params["dry_run"] = "true" }),
		"no params":   with(func(p *pipeline.TaskPayload) { p.Params = nil }),
		"empty param": with(func(p *pipeline.TaskPayload) { p.Params["region"] = "" }),
		"day before":  with(func(p *pipeline.TaskPayload) { p.Date = "2026-11-22" }),
	}
}

// Invariant 9 (and the ledger as the truth): a step task whose date or
// params differ from those recorded on its run is refused with a 400 naming
// the difference, runs nothing and changes nothing; the genuine task then
// runs the body on the recorded date and params.
func TestTaskDateAndParamsMustBeTheRuns(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		testTaskInputChecked(t, h, false)
	})
}

// The same for step records written before they carried the run's input
// digest: the run is read to compare.
func TestTaskDateAndParamsMustBeTheRunsOnOlderRecords(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		testTaskInputChecked(t, h, true)
	})
}

func testTaskInputChecked(t *testing.T, h *harness, legacy bool) {
	var seen []steps.Input
	h.bodies["a"].seen = func(in steps.Input) { seen = append(seen, in) }
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23", Params: map[string]string{"region": "eu"}}); err != nil {
		t.Fatal(err)
	}
	tasks := h.queue.take()
	if len(tasks) != 1 {
		t.Fatalf("queued %+v", tasks)
	}
	genuine := tasks[0]
	if legacy {
		got, err := h.ledger.GetSteps(ctx, genuine.Payload.RunID, "a")
		if err != nil {
			t.Fatal(err)
		}
		old := got[0]
		old.RunInput = ""
		if _, err := h.ledger.UpdateStep(ctx, old); err != nil {
			t.Fatal(err)
		}
	}
	before := h.run(genuine.Payload.RunID)
	for name, p := range forgedPayloads(genuine.Payload) {
		_, err := h.orch.HandleStep(ctx, p, pipeline.Delivery{TaskName: genuine.Name})
		if err == nil || !errors.Is(err, pipeline.ErrInvalid) || pipeline.ErrorStatus(err) != http.StatusBadRequest {
			t.Fatalf("%s: err %v (status %d), want a 400", name, err, pipeline.ErrorStatus(err))
		}
		if !strings.Contains(err.Error(), "recorded") {
			t.Errorf("%s: %q does not say what the run recorded", name, err)
		}
	}
	if n := h.bodies["a"].runs.Load(); n != 0 {
		t.Fatalf("forged tasks ran the body %d time(s)", n)
	}
	// The graph is compared by its version (its decoded form caches).
	before.Graph = nil
	after := h.run(genuine.Payload.RunID)
	after.Graph = nil
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("forged tasks changed the run:\nbefore %+v\nafter  %+v", before, after)
	}
	if q := h.queue.take(); len(q) != 0 {
		t.Fatalf("forged tasks enqueued %+v", q)
	}
	res, err := h.orch.HandleStep(ctx, genuine.Payload, pipeline.Delivery{TaskName: genuine.Name})
	if err != nil || res.Outcome != pipeline.OutcomeSucceeded {
		t.Fatalf("genuine task: %+v %v", res, err)
	}
	if len(seen) != 1 || seen[0].Date.Format("2006-01-02") != "2026-11-23" || !maps.Equal(seen[0].Params, map[string]string{"region": "eu"}) {
		t.Fatalf("body saw %+v", seen)
	}
}
