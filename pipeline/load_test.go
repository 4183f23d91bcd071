package pipeline_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

func testRegistry() *steps.Registry {
	reg := steps.NewRegistry()
	reg.Register("go", func(map[string]any) (steps.Step, error) {
		return steps.StepFunc(func(context.Context, steps.Input) (json.RawMessage, error) { return nil, nil }), nil
	})
	return reg
}

func TestParseDefaultsAndDAG(t *testing.T) {
	defs, err := pipeline.Parse("f.yaml", []byte(`
name: daily
time_zone: America/New_York
schedule: "30 5 * * 1-5"
params: {region: eu}
steps:
  - {name: extract, kind: go, timeout: 90s, max_attempts: 5, params: {rows: "10"}}
  - {name: t1, kind: go}
  - {name: t2, kind: go, after: [extract]}
  - {name: report, kind: go, after: [t1, t2]}
  - {name: side, kind: go, after: []}
`), testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	d := defs[0]
	if d.Location.String() != "America/New_York" || d.Params["region"] != "eu" {
		t.Fatalf("def = %+v", d)
	}
	e := d.Step("extract")
	if e.Timeout != 90*time.Second || e.MaxAttempts != 5 || e.Params["rows"] != "10" || len(e.After) != 0 {
		t.Fatalf("extract = %+v", e)
	}
	if t1 := d.Step("t1"); len(t1.After) != 1 || t1.After[0] != "extract" || t1.Timeout != pipeline.DefaultTimeout || t1.MaxAttempts != pipeline.DefaultMaxAttempts {
		t.Fatalf("t1 defaults = %+v", t1)
	}
	if got := strings.Join(d.Roots(), ","); got != "extract,side" {
		t.Fatalf("roots = %s", got)
	}
	if got := strings.Join(d.Successors("extract"), ","); got != "t1,t2" {
		t.Fatalf("successors = %s", got)
	}
}

func TestParseListsEveryProblem(t *testing.T) {
	_, err := pipeline.Parse("bad.yaml", []byte(`
name: Bad Name
time_zone: Mars/Olympus
schedule: "every day"
steps:
  - {name: a, kind: nope}
  - {name: a, kind: go, timeout: soon}
  - {name: b, kind: go, after: [ghost], max_attempts: 0}
  - {name: c, kind: go, after: [d]}
  - {name: d, kind: go, after: [c]}
`), testRegistry())
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"name \"Bad Name\"", "time_zone \"Mars/Olympus\"", "schedule \"every day\"",
		"unknown kind \"nope\"", "duplicate step name", "timeout \"soon\"", "max_attempts 0", "unknown step \"ghost\""} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	_, err = pipeline.Parse("cycle.yaml", []byte(`
name: cyc
steps:
  - {name: c, kind: go, after: [d]}
  - {name: d, kind: go, after: [c]}
`), testRegistry())
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle not found: %v", err)
	}
}

func TestParseRejectsUnknownKeys(t *testing.T) {
	_, err := pipeline.Parse("f.yaml", []byte(`
name: x
stepz: []
`), testRegistry())
	if err == nil || !strings.Contains(err.Error(), "stepz") {
		t.Fatalf("err = %v", err)
	}
	_, err = pipeline.Parse("f.yaml", []byte(`
name: x
steps:
  - {name: a, kind: go, retries: 3}
`), testRegistry())
	if err == nil || !strings.Contains(err.Error(), `unknown key "retries"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestParsePrefixesEverySettingsProblem(t *testing.T) {
	_, err := pipeline.Parse("f.yaml", []byte(`
name: x
steps:
  - {name: a, kind: http, http: {url: "nope", method: "FETCH"}}
`), testRegistry())
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) < 2 {
		t.Fatalf("want one line per problem:\n%s", err)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `f.yaml:4:33: pipeline "x": step 1 ("a"): `) { // the settings mapping
			t.Errorf("line without its place: %q", l)
		}
	}
}
