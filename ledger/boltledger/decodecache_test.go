package boltledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

func openCacheTest(t *testing.T) *Ledger {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

const testGraph = `{"version":"v1","time_zone":"UTC","max_run_duration":0,"steps":[
	{"name":"a","kind":"noop","timeout":0,"max_attempts":1,"params":{"p":"1"},"settings":{"m":{"k":"v"},"l":[1,{"x":"y"}]}},
	{"name":"b","kind":"noop","after":["a"],"timeout":0,"max_attempts":1}]}`

// createCacheRun creates a run with maps, slices, an output and a graph in
// every field that has them.
func createCacheRun(t *testing.T, l *Ledger, id string) {
	t.Helper()
	g := new(pipeline.Graph)
	if err := json.Unmarshal([]byte(testGraph), g); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	r := pipeline.Run{ID: id, Pipeline: "p", Key: "k", Status: pipeline.RunRunning, CreatedAt: now,
		Params: map[string]string{"a": "1"}, Notes: map[string]string{"n": "1"},
		Summary:           []pipeline.StepSummary{{Step: "a", Status: pipeline.StepSucceeded}},
		DefinitionVersion: "v1", Graph: g}
	steps := []pipeline.StepRun{
		{Step: "a", Status: pipeline.StepSucceeded, Attempts: 1, MaxAttempts: 1, StartedAt: now, FinishedAt: now,
			Output: json.RawMessage(`{"o":[1,2]}`), AsyncState: json.RawMessage(`{"s":1}`), Inputs: map[string]int{"x": 1}},
		{Step: "b", Status: pipeline.StepPending, MaxAttempts: 1},
	}
	if _, created, err := l.CreateRun(context.Background(), r, steps); err != nil || !created {
		t.Fatalf("CreateRun: created %v, %v", created, err)
	}
}

// comparable is r without its graph (holds a func) and the graph as JSON.
func comparable(t *testing.T, r pipeline.Run) (pipeline.Run, string) {
	t.Helper()
	b, err := json.Marshal(r.Graph)
	if err != nil {
		t.Fatal(err)
	}
	r.Graph = nil
	return r, string(b)
}

// Records are copies of the caller's own; the graph, immutable, is shared.
func TestDecodeCacheHandsOutCopies(t *testing.T) {
	ctx := context.Background()
	l := openCacheTest(t)
	createCacheRun(t, l, "p/k")
	first, err := l.GetRun(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	want, wantGraph := comparable(t, first)
	for round := range 3 {
		hits := l.decoded.steps.hits.Load() + l.decoded.runs.hits.Load()
		r, err := l.GetRun(ctx, "p/k")
		if err != nil {
			t.Fatal(err)
		}
		if got := l.decoded.steps.hits.Load() + l.decoded.runs.hits.Load(); got != hits+3 {
			t.Fatalf("round %d: %d cache hits reading the run and its 2 steps, want 3", round, got-hits)
		}
		got, gotGraph := comparable(t, r)
		if !reflect.DeepEqual(got, want) || gotGraph != wantGraph {
			t.Fatalf("round %d: read\n%+v %s\nwant\n%+v %s", round, got, gotGraph, want, wantGraph)
		}
		// Change everything the caller got.
		r.Params["a"], r.Notes["n"], r.Summary[0].Step = "changed", "changed", "changed"
		a := &r.Steps[0]
		a.Inputs["x"], a.Output[2], a.AsyncState[2], a.History[0].Error = 9, 'X', 'X', "changed"
		// The graph is immutable and shared, not copied per read.
		if r.Graph != first.Graph {
			t.Fatalf("round %d: the run's graph was copied, not shared", round)
		}

		steps, err := l.GetSteps(ctx, "p/k", "a")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(steps[0], want.Steps[0]) {
			t.Fatalf("round %d: GetSteps after changes read\n%+v\nwant\n%+v", round, steps[0], want.Steps[0])
		}
		steps[0].Inputs["x"], steps[0].Output[2], steps[0].History[0].Error = 7, 'Y', "changed"
	}
}

func TestDecodeCacheNeverServesAChangedRecord(t *testing.T) {
	ctx := context.Background()
	l := openCacheTest(t)
	createCacheRun(t, l, "p/k")
	other, err := New(l.db) // another ledger over the same file
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // cached, then a hit
		if _, err := l.GetSteps(ctx, "p/k", "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.GetRun(ctx, "p/k"); err != nil {
			t.Fatal(err)
		}
	}
	if l.decoded.steps.hits.Load() == 0 || l.decoded.runs.hits.Load() == 0 {
		t.Fatal("no cache hits: the test checks nothing")
	}

	// Another ledger writes the step and the run.
	s, err := other.GetSteps(ctx, "p/k", "a")
	if err != nil {
		t.Fatal(err)
	}
	s[0].Error = "by the other ledger"
	if _, err := other.UpdateStep(ctx, s[0]); err != nil {
		t.Fatal(err)
	}
	r, err := other.GetRun(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	r.Error = "by the other ledger"
	if _, err := other.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := l.GetRun(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	if got.Error != "by the other ledger" || got.Steps[0].Error != "by the other ledger" {
		t.Fatalf("read a stale run: error %q, step error %q", got.Error, got.Steps[0].Error)
	}

	// Another path writes the step with the same version and different
	// content: only the bytes tell.
	key := stepKey("p/k", "a")
	err = l.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(stepsBucket)
		version, err := versionOf(b.Get(key))
		if err != nil {
			return err
		}
		var rec stepRecord
		if _, err := decode(b.Get(key), &rec); err != nil {
			return err
		}
		rec.Error = "BY THE OTHER LEDGER" // same length too
		v, err := encode(version, rec)
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	steps, err := l.GetSteps(ctx, "p/k", "a")
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].Error != "BY THE OTHER LEDGER" {
		t.Fatalf("read a stale step: error %q", steps[0].Error)
	}

	// A deleted record is not found.
	if err := l.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(stepsBucket).Delete(key) }); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GetSteps(ctx, "p/k", "a"); err == nil {
		t.Fatal("read a deleted step")
	}
}

func TestRecordCacheIsBounded(t *testing.T) {
	c := recordCache[int]{max: 3}
	if c.entries != nil {
		t.Fatal("allocated before the first put")
	}
	for i := range 5 {
		c.put(string(rune('a'+i)), []byte{byte(i)}, i)
	}
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	for i := range 5 {
		v, ok := c.get([]byte{byte('a' + i)}, []byte{byte(i)})
		if want := i >= 2; ok != want || (ok && v != i) {
			t.Errorf("entry %d: got %d, %v; want present %v (the oldest are evicted)", i, v, ok, want)
		}
	}
	if _, ok := c.get([]byte("e"), []byte{9}); ok {
		t.Error("hit for other bytes")
	}
	c.put("c", []byte{7}, 7) // replaced in place: evicts nothing
	if v, ok := c.get([]byte("c"), []byte{7}); !ok || v != 7 || c.len() != 3 {
		t.Errorf("replaced entry: %d, %v, %d entries", v, ok, c.len())
	}
	if _, ok := c.get([]byte("d"), []byte{3}); !ok {
		t.Error("replacing an entry evicted another")
	}
}

// TestRecordClonesShareNothing fills every field of the records with
// reflection, so that a field added later without its clone fails here.
func TestRecordClonesShareNothing(t *testing.T) {
	for _, rec := range []any{&stepRecord{}, &runRecord{}} {
		v := reflect.ValueOf(rec).Elem()
		for i := range v.NumField() {
			fill(t, v.Field(i), v.Type().Field(i).Name)
		}
		var c any
		switch r := rec.(type) {
		case *stepRecord:
			c = r.clone()
		case *runRecord:
			c = r.clone()
		}
		cv := reflect.ValueOf(c)
		if !reflect.DeepEqual(v.Interface(), c) {
			t.Fatalf("%T: clone differs", rec)
		}
		for i := range v.NumField() {
			if shares(v.Field(i), cv.Field(i)) {
				t.Errorf("%T.%s: the clone shares memory with the record", rec, v.Type().Field(i).Name)
			}
		}
	}
}

// fill sets v to a non-zero value, maps and slices with one element.
func fill(t *testing.T, v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(name)
	case reflect.Int, reflect.Int64:
		v.SetInt(3)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(5, 0)))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i), name)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), name)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, name)
		fill(t, e, name)
		v.SetMapIndex(k, e)
	case reflect.Uint8:
		v.SetUint('1')
	default:
		t.Fatalf("field %s: kind %s not handled: teach fill and clone about it", name, v.Kind())
	}
}

// shares reports whether a and b refer to the same slice or map.
func shares(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice, reflect.Map:
		return a.Pointer() == b.Pointer()
	}
	return false
}

func TestDecodeCacheSharesGraphsByTheirBytes(t *testing.T) {
	ctx := context.Background()
	l := openCacheTest(t)
	createCacheRun(t, l, "p/1")
	createCacheRun(t, l, "p/2") // same definition version, same graph
	createCacheRun(t, l, "p/4")
	r1, err := l.GetRun(ctx, "p/1")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"p/2", "p/4"} {
		hits := l.decoded.graphs.hits.Load()
		r, err := l.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if l.decoded.graphs.hits.Load() != hits+1 {
			t.Fatalf("run %s: the graph of a definition was decoded again", id)
		}
		if r.Graph != r1.Graph {
			t.Fatalf("run %s: the graph of the same definition and bytes is not the one shared", id)
		}
	}

	// Same definition version, other bytes: never the other run's graph.
	g := new(pipeline.Graph)
	if err := json.Unmarshal([]byte(`{"version":"v1","time_zone":"UTC","steps":[{"name":"other","kind":"noop"}]}`), g); err != nil {
		t.Fatal(err)
	}
	r := pipeline.Run{ID: "p/3", Pipeline: "p", Key: "3", Status: pipeline.RunRunning, DefinitionVersion: "v1", Graph: g}
	if _, _, err := l.CreateRun(ctx, r, []pipeline.StepRun{{Step: "other"}}); err != nil {
		t.Fatal(err)
	}
	r3, err := l.GetRun(ctx, "p/3")
	if err != nil {
		t.Fatal(err)
	}
	if names := r3.Graph.StepNames(); len(names) != 1 || names[0] != "other" {
		t.Fatalf("run 3's graph has steps %v", names)
	}
}

// TestDecodeCacheConcurrentUse reads and writes the same records from many
// goroutines (run with -race); every read sees a version some write stored.
func TestDecodeCacheConcurrentUse(t *testing.T) {
	ctx := context.Background()
	l := openCacheTest(t)
	createCacheRun(t, l, "p/k")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				s, err := l.GetSteps(ctx, "p/k", "a")
				if err != nil {
					t.Error(err)
					return
				}
				s[0].Inputs[fmt.Sprint(w)] = i // callers change what they get
				s[0].Error = fmt.Sprint(w, i)
				if _, err := l.UpdateStep(ctx, s[0]); err != nil && !errors.Is(err, pipeline.ErrConflict) {
					t.Error(err)
					return
				}
				r, err := l.GetRun(ctx, "p/k")
				if err != nil {
					t.Error(err)
					return
				}
				r.Notes["w"] = fmt.Sprint(w)
				if _, err := l.UpdateRun(ctx, r); err != nil && !errors.Is(err, pipeline.ErrConflict) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := l.GetRun(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := New(l.db)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fresh.GetRun(ctx, "p/k")
	if err != nil {
		t.Fatal(err)
	}
	g1, _ := comparable(t, got)
	g2, _ := comparable(t, want)
	if !reflect.DeepEqual(g1, g2) {
		t.Fatalf("cached read\n%+v\ndecoded\n%+v", g1, g2)
	}
}
