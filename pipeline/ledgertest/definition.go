package ledgertest

import (
	"encoding/json"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

// graphJSON is a run's graph as the orchestrator records it: settings of
// several JSON types, durations, a fan-in.
const graphJSON = `{"version":"0123456789ab","time_zone":"Europe/Paris","max_run_duration":7200000000000,
 "steps":[
  {"name":"extract","kind":"http","timeout":90000000000,"max_attempts":3,"settings":{"url":"https://example.com/x","retries":2,"ratio":0.5,"on":true,"tags":["a","b"]}},
  {"name":"b-transform","kind":"noop","after":["extract"],"timeout":60000000000,"max_attempts":1,"params":{"mode":"full"}},
  {"name":"a-load","kind":"noop","after":["extract","b-transform"],"timeout":60000000000,"max_attempts":5}
 ]}`

func testGraph(t *testing.T) *pipeline.Graph {
	t.Helper()
	var g pipeline.Graph
	if err := json.Unmarshal([]byte(graphJSON), &g); err != nil {
		t.Fatalf("graph: %v", err)
	}
	return &g
}

// A run keeps the definition it was created with: CreateRun stores the
// graph and its version, every read returns them, and UpdateRun never
// changes them (it writes the run's own fields only).
func (s suite) testDefinition(t *testing.T) {
	ctx, l := t.Context(), s.newLedger(t)
	g := testGraph(t)
	r := newRun(uniqueName(t), "2026-03-14", at(0))
	r.DefinitionVersion, r.Graph = g.Version, g
	stored := mustCreate(ctx, t, l, r, newSteps(r.ID, g.StepNames()...))
	checkRun(t, "CreateRun result", stored, r)
	got := mustGetRun(ctx, t, l, r.ID)
	checkRun(t, "GetRun", got, r)
	if got.Graph == nil || got.Graph.Step("a-load") == nil || len(got.Graph.Successors("extract")) != 2 || got.Graph.Location().String() != "Europe/Paris" {
		t.Fatalf("GetRun: the graph read back is not usable: %+v", got.Graph)
	}
	listed, err := l.ListRuns(ctx, pipeline.RunFilter{Pipeline: r.Pipeline})
	if err != nil || len(listed) != 1 {
		t.Fatalf("ListRuns = %v, %v", runIDsOf(listed), err)
	}
	checkRun(t, "ListRuns", listed[0], r)

	// An update from a record without the graph (or with another one) keeps
	// the stored definition.
	up := got
	up.Graph, up.DefinitionVersion = nil, ""
	up.Status = pipeline.RunRunning
	mustUpdateRun(ctx, t, l, up)
	want := r
	want.Status = pipeline.RunRunning
	checkRun(t, "GetRun after UpdateRun without the graph", mustGetRun(ctx, t, l, r.ID), want)
}

// Every write is recognisable: it stores a write id, new for each write,
// which reads return and the write's result carries. (A backend whose client
// may lose a write's reply uses it to recognise its own write on a retry.)
func (s suite) testWriteID(t *testing.T) {
	ctx, l := t.Context(), s.newLedger(t)
	r := newRun(uniqueName(t), "2026-03-14", at(0))
	mustCreate(ctx, t, l, r, newSteps(r.ID, "only"))
	seen := map[string]bool{}
	fresh := func(what, id string) {
		t.Helper()
		if id == "" || seen[id] {
			t.Fatalf("%s: write id %q is empty or not new (seen %v)", what, id, seen)
		}
		seen[id] = true
	}
	cur := mustGetStep(ctx, t, l, r.ID, "only")
	for i := range 3 {
		cur.Attempts = i + 1
		wrote := mustUpdateStep(ctx, t, l, cur)
		fresh("UpdateStep", wrote.WriteID)
		if back := mustGetStep(ctx, t, l, r.ID, "only"); back.WriteID != wrote.WriteID {
			t.Fatalf("GetSteps write id %q, the write's %q", back.WriteID, wrote.WriteID)
		}
		cur = wrote
	}
	run := mustGetRun(ctx, t, l, r.ID)
	for i := range 2 {
		run.Error = string(rune('a' + i))
		wrote := mustUpdateRun(ctx, t, l, run)
		fresh("UpdateRun", wrote.WriteID)
		if back := mustGetRun(ctx, t, l, r.ID); back.WriteID != wrote.WriteID {
			t.Fatalf("GetRun write id %q, the write's %q", back.WriteID, wrote.WriteID)
		}
		run = wrote
	}
}
