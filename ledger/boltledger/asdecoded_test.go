package boltledger

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TestAsDecodedIsWhatDecodingGives checks the write path's promise: a record
// asDecoded accepts is exactly what decoding its encoding gives, and the ones
// it refuses would not be.
func TestAsDecodedIsWhatDecodingGives(t *testing.T) {
	utc := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	base := func() stepRecord {
		return stepRecord{Status: "running", Attempts: 1, StartedAt: utc, UpdatedAt: utc,
			Output: json.RawMessage(`{"a":"b c","d":[1,2.5,null,"\"x\\\\"]}`), Inputs: map[string]int{"a": 2},
			History: []pipeline.Attempt{{N: 1, StartedAt: utc, Status: "running", Error: "é"}}, WriteID: "w"}
	}
	cases := []struct {
		name string
		edit func(*stepRecord)
		ok   bool
	}{
		{"plain", func(*stepRecord) {}, true},
		{"empty maps and slices", func(r *stepRecord) {
			r.Inputs, r.History, r.Output, r.AsyncState = map[string]int{}, []pipeline.Attempt{}, json.RawMessage{}, json.RawMessage{}
		}, true},
		{"null output", func(r *stepRecord) { r.Output = json.RawMessage(`null`) }, true},
		{"zero times", func(r *stepRecord) { r.StartedAt, r.History[0].StartedAt = time.Time{}, time.Time{} }, true},
		{"monotonic time", func(r *stepRecord) { r.LeaseUntil = time.Now() }, false},
		{"zoned time", func(r *stepRecord) { r.FinishedAt = utc.In(time.FixedZone("x", 3600)) }, false},
		{"zoned attempt", func(r *stepRecord) { r.History[0].FinishedAt = utc.In(time.FixedZone("x", 3600)) }, false},
		{"invalid UTF-8", func(r *stepRecord) { r.Error = "a\xffb" }, false},
		{"invalid UTF-8 attempt", func(r *stepRecord) { r.History[0].Error = "a\xffb" }, false},
		{"invalid UTF-8 key", func(r *stepRecord) { r.Inputs["\xff"] = 1 }, false},
		{"spaced output", func(r *stepRecord) { r.Output = json.RawMessage(`{"a": 1}`) }, false},
		{"newline output", func(r *stepRecord) { r.Output = json.RawMessage("[1,\n2]") }, false},
		{"html output", func(r *stepRecord) { r.Output = json.RawMessage(`"<b>"`) }, false},
		{"line separator", func(r *stepRecord) { r.AsyncState = json.RawMessage("\"\u2028\"") }, false},
	}
	for _, c := range cases {
		rec := base()
		c.edit(&rec)
		got, ok := rec.asDecoded()
		v, err := encode(1, rec)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var back stepRecord
		if _, err := decode(v, &back); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if same := reflect.DeepEqual(got, back); ok != c.ok || (ok && !same) {
			t.Errorf("%s: asDecoded says %v (want %v); same as decoded: %v\n%+v\n%+v", c.name, ok, c.ok, same, got, back)
		}
	}

	run := runRecord{Pipeline: "p", Status: "running", CreatedAt: utc, Params: map[string]string{}, Notes: map[string]string{"n": "m"},
		Steps: []string{"a"}, Summary: []pipeline.StepSummary{}, Graph: json.RawMessage(`{"steps":[]}`)}
	got, ok := run.asDecoded()
	v, err := encode(1, run)
	if err != nil {
		t.Fatal(err)
	}
	var back runRecord
	if _, err := decode(v, &back); err != nil {
		t.Fatal(err)
	}
	if !ok || !reflect.DeepEqual(got, back) {
		t.Errorf("run: asDecoded says %v; \n%+v\n%+v", ok, got, back)
	}
	run.Key = "\xff"
	if _, ok := run.asDecoded(); ok {
		t.Error("run with invalid UTF-8 accepted")
	}
}

// TestWritesFeedTheDecodeCache checks that a read after a write is a hit,
// and that it reads what decoding would.
func TestWritesFeedTheDecodeCache(t *testing.T) {
	ctx := context.Background()
	l := openCacheTest(t)
	createCacheRun(t, l, "p/k")
	hits := func() uint64 { return l.decoded.steps.hits.Load() + l.decoded.runs.hits.Load() }

	h := hits()
	steps, err := l.GetSteps(ctx, "p/k", "b") // written by CreateRun
	if err != nil {
		t.Fatal(err)
	}
	if hits() != h+1 {
		t.Fatal("reading a step CreateRun wrote: no cache hit")
	}
	s := steps[0]
	s.Status, s.Attempts, s.StartedAt = pipeline.StepRunning, 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Inputs = map[string]int{"a": 1}
	s, err = l.UpdateStep(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.GetRun(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	r.Notes["more"] = "x"
	if r, err = l.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Notes["more"] = "changed after the write"

	h = hits()
	got, err := l.GetRun(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	if hits() != h+3 {
		t.Fatalf("reading the run and steps just written: %d cache hits, want 3", hits()-h)
	}
	fresh, err := New(l.db) // a ledger with an empty cache decodes
	if err != nil {
		t.Fatal(err)
	}
	want, err := fresh.GetRun(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	g1, gj1 := comparable(t, got)
	g2, gj2 := comparable(t, want)
	if !reflect.DeepEqual(g1, g2) || gj1 != gj2 {
		t.Fatalf("cached read\n%+v %s\ndecoded\n%+v %s", g1, gj1, g2, gj2)
	}
	if got.Notes["more"] != "x" {
		t.Fatalf("note %q: the cache kept the caller's map", got.Notes["more"])
	}
}
