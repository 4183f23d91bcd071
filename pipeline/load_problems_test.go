package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// problemRegistry holds the built-in kinds and two example-like kinds, so
// that typos of dotted kind names can be tested.
func problemRegistry() *steps.Registry {
	reg := steps.NewRegistry()
	for _, k := range []string{"example.extract", "example.report"} {
		reg.Register(k, func(map[string]any) (steps.Step, error) { return steps.NewNoop(nil) })
	}
	return reg
}

const known = "(known: example.extract, example.report, http, noop, sleep)"

// TestParseProblemsAtTheirPlace checks, for each fixture under
// testdata/load, the complete list of problems: every one at its
// file:line:column, all of them at once, in file order.
func TestParseProblemsAtTheirPlace(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"typos.yaml", []string{
			`typos.yaml:3:1: pipeline "daily": unknown key "schedul" (did you mean "schedule"?) (known: name, time_zone, schedule, max_run_duration, deadline, start_within, params, steps)`,
			`typos.yaml:6:11: pipeline "daily": step 1 ("extract"): unknown kind "example.extrakt" (did you mean "example.extract"?) ` + known,
			`typos.yaml:7:5: pipeline "daily": step 1 ("extract"): unknown key "timout" (did you mean "timeout"?) (known: name, kind, after, timeout, max_attempts, params)`,
			`typos.yaml:9:11: pipeline "daily": step 2 ("transform"): unknown kind "extrakt" (did you mean "example.extract"?) ` + known,
			`typos.yaml:10:13: pipeline "daily": step 2 ("transform"): after names unknown step "extrakt" (did you mean "extract"?)`,
			`typos.yaml:13:5: pipeline "daily": step 3 ("report"): unknown key "retries" (known: name, kind, after, timeout, max_attempts, params, example.report)`,
		}},
		{"cycle_and_duplicates.yaml", []string{ // the cycle is reported although names are duplicated too
			`cycle_and_duplicates.yaml:4:12: pipeline "cyc": step 2 ("a"): duplicate step name`,
			`cycle_and_duplicates.yaml:6:35: pipeline "cyc": steps form a cycle: c -> d -> c`,
		}},
		{"implicit_cycle.yaml", []string{ // second and third are after their previous step by default
			`implicit_cycle.yaml:6:5: pipeline "loop": steps form a cycle: first -> second -> third -> first`,
		}},
		{"syntax_indent.yaml", []string{ // yaml.v3 alone says line 2
			`syntax_indent.yaml:6:4: YAML syntax: value is not allowed in this context`,
		}},
		{"syntax_flow.yaml", []string{ // yaml.v3 alone says line 3
			`syntax_flow.yaml:5:3: YAML syntax: ',' or ']' must be specified`,
		}},
		{"second_document.yaml", []string{ // lines count from the top of the file, not of the document
			`second_document.yaml:9:19: pipeline "two": step 1 ("a"): max_attempts must be a whole number, not "lots"`,
			`second_document.yaml:10:14: pipeline "two": step 1 ("a"): timeout must be a single value, not a list`,
			`second_document.yaml:13:12: pipeline "two": step 2 ("b"): after must be a list of step names, like [extract], not "extract"`,
		}},
		{"shapes.yaml", []string{
			`shapes.yaml:1:1: a pipeline must be a mapping (name, schedule, steps, ...), not a list`,
		}},
		{"duplicate_keys.yaml", []string{
			`duplicate_keys.yaml:6:5: pipeline "dup": key "timeout" given twice (first at line 5)`,
		}},
		{"values.yaml", []string{
			`values.yaml:1:7: pipeline "Bad Name": name "Bad Name" must match ^[a-z0-9][a-z0-9_-]{0,62}$`,
			`values.yaml:2:12: pipeline "Bad Name": time_zone "Mars/Olympus" is not a known IANA time zone (like Europe/Paris)`,
			`values.yaml:3:11: pipeline "Bad Name": schedule "every day": expected exactly 5 fields, found 2: [every day]`,
			`values.yaml:4:19: pipeline "Bad Name": max_run_duration "forever" is not a positive duration like 6h`,
			`values.yaml:6:21: pipeline "Bad Name": step 1 ("a"): unknown kind "nope" ` + known,
			`values.yaml:7:12: pipeline "Bad Name": step 2 ("a"): duplicate step name`,
			`values.yaml:7:36: pipeline "Bad Name": step 2 ("a"): timeout "soon" is not a positive duration like 90s`,
			`values.yaml:8:35: pipeline "Bad Name": step 3 ("b"): after names unknown step "ghost"`,
			`values.yaml:8:57: pipeline "Bad Name": step 3 ("b"): max_attempts 0 must be between 1 and 100`,
			`values.yaml:9:5: pipeline "Bad Name": step 4: name is required`,
			`values.yaml:10:5: pipeline "Bad Name": step 5 ("e"): kind is required ` + known,
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "load", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defs, err := pipeline.Parse(tc.file, data, problemRegistry())
			if err == nil {
				t.Fatalf("no error; got %d definition(s)", len(defs))
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var p *pipeline.Problem
				if !errors.As(e, &p) || p.Line == 0 || p.Column == 0 {
					t.Errorf("problem without a place: %v", e)
				}
			}
		})
	}
}

// TestParseKeepsValidDocuments: a file's good pipelines load although a
// later document in it has problems.
func TestParseKeepsValidDocuments(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "load", "second_document.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pipeline.Parse("second_document.yaml", data, problemRegistry())
	if err == nil || len(defs) != 1 || defs[0].Name != "one" {
		t.Fatalf("defs = %v, err = %v", defs, err)
	}
}

func TestParseMergeKeysAndAliases(t *testing.T) {
	defs, err := pipeline.Parse("m.yaml", []byte(`
name: merged
steps:
  - &base {name: a, kind: noop, timeout: 5s, max_attempts: 2}
  - <<: *base
    name: b
    after: [a]
`), problemRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b := defs[0].Step("b")
	if b == nil || b.Timeout.Seconds() != 5 || b.MaxAttempts != 2 || strings.Join(b.After, ",") != "a" {
		t.Fatalf("b = %+v", b)
	}
}

func TestLoadFilesPlacesDuplicatePipelines(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("# "+f+"\nname: same\nsteps: [{name: s, kind: noop}]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := pipeline.LoadFiles([]string{dir}, problemRegistry())
	want := filepath.Join(dir, "b.yaml") + `:2:7: pipeline "same" is also defined at ` + filepath.Join(dir, "a.yaml") + ":2:7"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestSuggestOnlyCloseNames(t *testing.T) {
	_, err := pipeline.Parse("f.yaml", []byte("name: x\nsteps:\n  - {name: a, kind: noop, retries: 3, Kind: noop}\n"), problemRegistry())
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, `"retries" (did you mean`) {
		t.Errorf("retries is no typo of a known key:\n%s", msg)
	}
	if !strings.Contains(msg, `unknown key "Kind" (did you mean "kind"?)`) {
		t.Errorf("case slip not suggested:\n%s", msg)
	}
}
