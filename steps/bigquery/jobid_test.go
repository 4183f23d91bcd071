package bigquery_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/bigquery"
)

var jobIDChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validJobID says whether id is a BigQuery job ID.
func validJobID(id string) bool { return len(id) <= 1024 && jobIDChars.MatchString(id) }

func TestJobIDIsDeterministicAndDistinct(t *testing.T) {
	in := steps.Input{RunID: "daily@2026-11-23", Pipeline: "daily", Step: "merge", Generation: 1, Attempt: 1}
	id := bigquery.JobID("pipeline", in)
	if id != bigquery.JobID("pipeline", in) {
		t.Fatal("the same attempt got two IDs")
	}
	if !strings.HasPrefix(id, "pipeline_daily_merge_2026-11-23_g1_a1_") || !validJobID(id) {
		t.Fatalf("id %q", id)
	}
	seen := map[string]string{id: "base"}
	vary := map[string]func(steps.Input) (string, steps.Input){
		"run":        func(in steps.Input) (string, steps.Input) { in.RunID = "daily@2026-11-24"; return "pipeline", in },
		"step":       func(in steps.Input) (string, steps.Input) { in.Step = "merge2"; return "pipeline", in },
		"generation": func(in steps.Input) (string, steps.Input) { in.Generation = 2; return "pipeline", in },
		"attempt":    func(in steps.Input) (string, steps.Input) { in.Attempt = 2; return "pipeline", in },
		"prefix":     func(in steps.Input) (string, steps.Input) { return "staging", in },
		// Another deployment (ledger) sharing the project.
		"namespace": func(in steps.Input) (string, steps.Input) {
			in.Namespace = "projects/p/databases/(default)/documents/runs"
			return "pipeline", in
		},
		// Keys that read the same once sanitized still differ by the hash.
		"sanitized": func(in steps.Input) (string, steps.Input) { in.RunID = "daily@2026/11/23"; return "pipeline", in },
		"sanitized2": func(in steps.Input) (string, steps.Input) {
			in.RunID = "daily@2026:11:23"
			return "pipeline", in
		},
	}
	for name, f := range vary {
		p, v := f(in)
		got := bigquery.JobID(p, v)
		if other, dup := seen[got]; dup {
			t.Errorf("%s and %s share the ID %s", name, other, got)
		}
		seen[got] = name
	}
}

func TestJobIDOfLongOddNamesIsValid(t *testing.T) {
	long := strings.Repeat("ä.b/c ", 400)
	in := steps.Input{RunID: "p@" + long, Pipeline: long, Step: long, Generation: 12, Attempt: 3}
	id := bigquery.JobID(strings.Repeat("x", 64), in)
	if !validJobID(id) {
		t.Fatalf("invalid job ID (%d chars): %q", len(id), id)
	}
}
