package pipeline_test

import (
	"encoding/json"
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

// Through the step route: a task whose params are not the run's gets a 400
// with a JSON message naming the difference; the genuine one runs.
func TestAPIStepTaskWithOtherParamsIs400(t *testing.T) {
	a := newAPI(t)
	if code, out := a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain","date":"2026-11-23","params":{"region":"eu"}}`), nil); code != 201 {
		t.Fatalf("start = %d %v", code, out)
	}
	tasks := a.queue.take()
	if len(tasks) != 1 {
		t.Fatalf("queued %+v", tasks)
	}
	forged := tasks[0].Payload
	forged.Params = map[string]string{"region": "us"}
	body, _ := json.Marshal(forged)
	code, out := a.do("POST", forged.Path(), a.token, body, map[string]string{"X-CloudTasks-TaskName": tasks[0].Name})
	msg, _ := out["error"].(string)
	if code != http.StatusBadRequest || !strings.Contains(msg, `param "region" is "us", recorded "eu"`) {
		t.Fatalf("forged task = %d %v", code, out)
	}
	if n := a.bodies["a"].runs.Load(); n != 0 {
		t.Fatalf("the forged task ran the body %d time(s)", n)
	}
	body, _ = json.Marshal(tasks[0].Payload)
	code, out = a.do("POST", forged.Path(), a.token, body, map[string]string{"X-CloudTasks-TaskName": tasks[0].Name})
	if code != 200 || out["outcome"] != "succeeded" {
		t.Fatalf("genuine task = %d %v", code, out)
	}
}
