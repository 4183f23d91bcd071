package example_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/example"
)

var runDate = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

func registry(dataDir string) *steps.Registry {
	reg := steps.NewRegistry()
	example.Register(reg, dataDir)
	return reg
}

// input is what the orchestrator gives a step: the pipeline's params under
// the run's under the step's, and the predecessors' outputs.
func input(d *pipeline.Definition, s *pipeline.StepDef, runParams map[string]string, outputs map[string]json.RawMessage) steps.Input {
	params := map[string]string{}
	maps.Copy(params, d.Params)
	maps.Copy(params, runParams)
	maps.Copy(params, s.Params)
	inputs := map[string]json.RawMessage{}
	for _, a := range s.After {
		inputs[a] = outputs[a]
	}
	return steps.Input{
		RunID: pipeline.RunID(d.Name, runDate.Format(time.DateOnly)), Pipeline: d.Name, Step: s.Name,
		Date: runDate, Params: params, Inputs: inputs, Attempt: 1, MaxAttempts: s.MaxAttempts,
	}
}

func TestDailyPipelineFileRuns(t *testing.T) {
	dataDir := t.TempDir()
	cat, err := pipeline.LoadFiles([]string{"../../pipelines"}, registry(dataDir))
	if err != nil {
		t.Fatalf("LoadFiles: %v", err)
	}
	d := cat.Get("daily")
	if d == nil {
		t.Fatal("no pipeline daily")
	}
	if d.Schedule != "0 6 * * *" || d.TimeZone != "Europe/Paris" || strings.Join(d.StepNames(), ",") != "extract,transform,report" {
		t.Errorf("daily = %s %s %v", d.Schedule, d.TimeZone, d.StepNames())
	}
	for _, s := range d.Steps {
		if s.Timeout >= pipeline.DefaultTimeout || s.MaxAttempts != 3 {
			t.Errorf("step %s: timeout %s, max_attempts %d: want them set in the file", s.Name, s.Timeout, s.MaxAttempts)
		}
	}

	outputs := map[string]json.RawMessage{}
	for _, s := range d.Steps {
		out, err := s.Body.Run(context.Background(), input(d, s, nil, outputs))
		if err != nil {
			t.Fatalf("step %s: %v", s.Name, err)
		}
		outputs[s.Name] = out
	}
	dir := filepath.Join(dataDir, "daily", "2026-03-14")

	// extract: 200 orders, header first.
	rows := readCSV(t, filepath.Join(dir, "orders.csv"))
	if len(rows) != 201 || strings.Join(rows[0], ",") != "order_id,customer,region,amount" {
		t.Fatalf("orders.csv has %d lines, header %v", len(rows), rows[0])
	}
	if rows[1][0] != "20260314-00001" {
		t.Errorf("first order id %q", rows[1][0])
	}

	// transform: the summary agrees with the CSV and with its output.
	var sum example.Summary
	readJSON(t, filepath.Join(dir, "summary.json"), &sum)
	if sum.Orders != 200 || sum.Date != "2026-03-14" || sum.RunID != "daily@2026-03-14" || len(sum.TopCustomers) != 5 {
		t.Errorf("summary = %+v", sum)
	}
	var byRegion float64
	var n int
	for _, r := range sum.ByRegion {
		byRegion += r.Total
		n += r.Orders
	}
	if n != 200 || !near(byRegion, sum.Total) {
		t.Errorf("regions add up to %d orders, %.2f; summary says 200, %.2f", n, byRegion, sum.Total)
	}
	if !near(csvTotal(t, rows[1:]), sum.Total) {
		t.Errorf("CSV total %.2f != summary total %.2f", csvTotal(t, rows[1:]), sum.Total)
	}
	for i := 1; i < len(sum.TopCustomers); i++ {
		if sum.TopCustomers[i].Total > sum.TopCustomers[i-1].Total {
			t.Errorf("top customers not sorted: %+v", sum.TopCustomers)
		}
	}
	var tout struct {
		Orders int     `json:"orders"`
		Total  float64 `json:"total"`
	}
	if err := json.Unmarshal(outputs["transform"], &tout); err != nil || tout.Orders != 200 || !near(tout.Total, sum.Total) {
		t.Errorf("transform output %s (%v)", outputs["transform"], err)
	}

	// report: a markdown file with both tables, named in the output.
	var rout struct{ Report string }
	if err := json.Unmarshal(outputs["report"], &rout); err != nil || rout.Report != filepath.Join(dir, "report.md") {
		t.Fatalf("report output %s (%v)", outputs["report"], err)
	}
	md, err := os.ReadFile(rout.Report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Sales report: daily, 2026-03-14",
		"Run `daily@2026-03-14`: **200 orders**",
		"| Region | Orders | Total | Share |",
		"| # | Customer | Orders | Total |",
		"| 1 | " + sum.TopCustomers[0].Customer + " | ",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	t.Logf("report.md:\n%s", md)
}

func TestFanoutExampleRuns(t *testing.T) {
	dataDir := t.TempDir()
	cat, err := pipeline.LoadFiles([]string{"../../pipelines/examples/fanout.yaml"}, registry(dataDir))
	if err != nil {
		t.Fatalf("LoadFiles: %v", err)
	}
	d := cat.Get("fanout")
	if d == nil {
		t.Fatal("no pipeline fanout")
	}
	if got := d.Successors("extract"); len(got) != 2 {
		t.Errorf("extract fans out to %v, want two transforms", got)
	}

	hooks := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- r.Header.Get("Idempotency-Key") + " " + string(b)
		io.WriteString(w, `{"received":true}`)
	}))
	defer srv.Close()
	runParams := map[string]string{"notify_url": srv.URL + "/hook", "rows": "300"}

	outputs := map[string]json.RawMessage{}
	run := func(name string, in steps.Input) json.RawMessage {
		out, err := d.Step(name).Body.Run(context.Background(), in)
		if err != nil {
			t.Errorf("step %s: %v", name, err)
		}
		return out
	}
	step := func(name string) json.RawMessage {
		return run(name, input(d, d.Step(name), runParams, outputs))
	}
	outputs["extract"] = step("extract")
	// The two transforms run at the same time, as the queue would run them.
	var wg sync.WaitGroup
	fanned := map[string]json.RawMessage{}
	var mu sync.Mutex
	for _, name := range d.Successors("extract") {
		in := input(d, d.Step(name), runParams, outputs)
		wg.Go(func() {
			out := run(name, in)
			mu.Lock()
			fanned[name] = out
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	maps.Copy(outputs, fanned)
	outputs["report"] = step("report")
	outputs["notify"] = step("notify")

	dir := filepath.Join(dataDir, "fanout", "2026-03-14")
	var ew, ns example.Summary
	readJSON(t, filepath.Join(dir, "summary-east-west.json"), &ew)
	readJSON(t, filepath.Join(dir, "summary-north-south.json"), &ns)
	if ew.Orders+ns.Orders != 300 || len(ns.TopCustomers) != 3 {
		t.Errorf("split summaries: %d + %d orders (want 300), %d top customers", ew.Orders, ns.Orders, len(ns.TopCustomers))
	}
	for _, r := range ew.ByRegion {
		if r.Region != "east" && r.Region != "west" {
			t.Errorf("east-west summary has region %q", r.Region)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Regional sales: fanout, 2026-03-14", "**300 orders**", "## Regions east, west", "## Regions north, south, central"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if string(outputs["notify"]) != `{"received":true}` {
		t.Errorf("notify output %s", outputs["notify"])
	}
	hook := <-hooks
	if want := `fanout@2026-03-14/notify {"pipeline": "fanout", "run": "fanout@2026-03-14", "date": "2026-03-14", "attempt": 1}`; hook != want {
		t.Errorf("hook got %s\nwant     %s", hook, want)
	}
}

func TestStepsAreIdempotent(t *testing.T) {
	dataDir := t.TempDir()
	reg := registry(dataDir)
	in := steps.Input{RunID: "p@2026-03-14", Pipeline: "p", Step: "s", Date: runDate, Params: map[string]string{"rows": "50"}}
	var first [][]byte
	for round := range 2 {
		for i, kind := range []string{example.KindExtract, example.KindTransform, example.KindReport} {
			s, err := reg.Build(kind, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Run(context.Background(), in); err != nil {
				t.Fatalf("round %d %s: %v", round, kind, err)
			}
			name := []string{"orders.csv", "summary.json", "report.md"}[i]
			b, err := os.ReadFile(filepath.Join(dataDir, "p", "2026-03-14", name))
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				first = append(first, b)
			} else if !bytes.Equal(first[i], b) {
				t.Errorf("%s differs on the second run", name)
			}
		}
	}
	if lines := bytes.Count(first[0], []byte("\n")); lines != 51 {
		t.Errorf("rows=50 gave %d lines", lines)
	}
	entries, _ := os.ReadDir(filepath.Join(dataDir, "p", "2026-03-14"))
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files left: %v, want the three outputs only", names)
	}

	// Another date gives other data.
	other := in
	other.Date, other.RunID = runDate.AddDate(0, 0, 1), "p@2026-03-15"
	s, _ := reg.Build(example.KindExtract, nil)
	if _, err := s.Run(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "p", "2026-03-15", "orders.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b[60:], first[0][60:]) {
		t.Error("two dates gave the same orders")
	}
}

func TestBadInputsArePermanent(t *testing.T) {
	dataDir := t.TempDir()
	reg := registry(dataDir)
	in := steps.Input{RunID: "p@2026-03-14", Pipeline: "p", Step: "s", Date: runDate}
	dir := filepath.Join(dataDir, "p", "2026-03-14")
	build := func(kind string, settings map[string]any) steps.Step {
		s, err := reg.Build(kind, settings)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	check := func(what string, s steps.Step, in steps.Input, wants ...string) {
		t.Helper()
		_, err := s.Run(context.Background(), in)
		if err == nil || !steps.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", what, err)
			return
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", what, err, w)
			}
		}
	}
	check("missing orders", build(example.KindTransform, nil), in, filepath.Join(dir, "orders.csv"), "missing")
	check("missing summary", build(example.KindReport, nil), in, filepath.Join(dir, "summary.json"), "missing")

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, csv, want string }{
		{"bad amount", "order_id,customer,region,amount\n1,A,east,12.345\n2,B,west,x\n", "orders.csv:2: amount \"12.345\""},
		{"short row", "order_id,customer,region,amount\n1,A,east\n", "wrong number of fields"},
		{"bad header", "id,customer,region,amount\n", "header"},
		{"empty", "", "empty"},
	} {
		os.WriteFile(filepath.Join(dir, "orders.csv"), []byte(tc.csv), 0o644)
		check(tc.name, build(example.KindTransform, nil), in, filepath.Join(dir, "orders.csv"), tc.want)
	}
	os.WriteFile(filepath.Join(dir, "summary.json"), []byte("{not json"), 0o644)
	check("bad summary", build(example.KindReport, nil), in, filepath.Join(dir, "summary.json"))
	os.WriteFile(filepath.Join(dir, "summary.json"), []byte(`{"date":"1999-01-01"}`), 0o644)
	check("other date's summary", build(example.KindReport, nil), in, "1999-01-01")

	bad := in
	bad.Params = map[string]string{"rows": "many"}
	check("bad rows param", build(example.KindExtract, nil), bad, `param rows "many"`)
	bad = in
	bad.Date = time.Time{}
	check("no date", build(example.KindExtract, nil), bad, "no date")
	bad = in
	bad.Pipeline = "../escape"
	check("bad pipeline", build(example.KindExtract, nil), bad, "cannot name a directory")
}

func TestBadSettingsAreListed(t *testing.T) {
	reg := registry(t.TempDir())
	for _, tc := range []struct {
		kind     string
		settings map[string]any
		wants    []string
	}{
		{example.KindExtract, map[string]any{"rows": 0, "seed": 1}, []string{"rows 0 must be between", `unknown setting "seed"`}},
		{example.KindTransform, map[string]any{"regions": []any{"mars"}, "output": "../x.json", "top": "five"},
			[]string{`unknown region "mars"`, `output "../x.json" must be a plain file name`, "top must be a whole number"}},
		{example.KindTransform, map[string]any{"output": "orders.csv"}, []string{"must not overwrite"}},
		{example.KindReport, map[string]any{"inputs": []any{}, "output": ".hidden"}, []string{"at least one summary", `output ".hidden"`}},
		{example.KindReport, map[string]any{"inputs": []any{"a/b.json", "report.md"}}, []string{`"a/b.json" must be a plain file name`, `output "report.md" is also an input`}},
	} {
		_, err := reg.Build(tc.kind, tc.settings)
		for _, w := range tc.wants {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s %v: err = %v, want %q", tc.kind, tc.settings, err, w)
			}
		}
	}
}

func TestCancelledContext(t *testing.T) {
	reg := registry(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := reg.Build(example.KindExtract, nil)
	if _, err := s.Run(ctx, steps.Input{Pipeline: "p", Date: runDate}); err == nil || steps.IsPermanent(err) {
		t.Errorf("err = %v, want a transient cancellation", err)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func csvTotal(t *testing.T, rows [][]string) float64 {
	var sum float64
	for _, r := range rows {
		var f float64
		if err := json.Unmarshal([]byte(r[3]), &f); err != nil {
			t.Fatalf("amount %q: %v", r[3], err)
		}
		sum += f
	}
	return sum
}

func near(a, b float64) bool { return a-b < 0.005 && b-a < 0.005 }
