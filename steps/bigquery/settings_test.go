package bigquery_test

import (
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/bigquery"
)

// Bad settings are refused with one error naming every problem.
func TestSettingsNameEveryProblem(t *testing.T) {
	_, err := bigquery.Factory()(map[string]any{
		"project":           "Not_A_Project",
		"query":             "SELECT {{.Params.x",
		"write_disposition": "WRITE_SOMETIMES",
		"labels":            map[string]any{"Team": "data", "env": "Prod!"},
		"check_interval":    "soon",
		"job_prefix":        "bad prefix",
		"use_legacy_sql":    "no",
		"destinaton_table":  "ds.t",
	})
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`project "Not_A_Project" is not a Google Cloud project ID`,
		"location is required",
		"query: bad template",
		`write_disposition "WRITE_SOMETIMES" is not one of`,
		`labels: key "Team"`,
		`labels.env: value "Prod!"`,
		`check_interval "soon" is not a positive duration`,
		`job_prefix "bad prefix"`,
		"use_legacy_sql must be true or false",
		`unknown setting "destinaton_table"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestSettingsDestinationTable(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"project": "my-project", "location": "EU", "query": "SELECT 1"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     string // "" = accepted
	}{
		{"dataset.table", base(map[string]any{"destination_table": "ds.t", "write_disposition": "write_truncate"}), ""},
		{"project.dataset.table", base(map[string]any{"destination_table": "other-proj.ds.t"}), ""},
		{"templated", base(map[string]any{"destination_table": "ds.t${{.Params.day}}"}), ""},
		{"one part", base(map[string]any{"destination_table": "t"}), `destination_table "t" is not dataset.table`},
		{"empty part", base(map[string]any{"destination_table": "ds..t"}), "has an empty part"},
		{"disposition alone", base(map[string]any{"write_disposition": "WRITE_APPEND"}), "write_disposition applies only with a destination_table"},
		{"bad location", base(map[string]any{"location": "in the cloud"}), `location "in the cloud"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := bigquery.Factory()(tc.settings)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := st.(steps.AsyncStep); !ok {
					t.Fatalf("%T is not an asynchronous step", st)
				}
				if _, ok := st.(steps.Canceller); !ok {
					t.Fatalf("%T cannot cancel", st)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// The kind is registered under its name and builds without credentials:
// the client is made on first use. Without credentials a start and a check
// then fail for good, saying what to do: retrying (a start's attempts,
// checks until the step's timeout, up to days) cannot make them appear.
func TestRegisterNeedsNoCredentialsUntilUsed(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
	reg := steps.NewRegistry()
	bigquery.Register(reg)
	st, err := reg.Build(bigquery.Kind, map[string]any{"project": "my-project", "location": "US", "query": "SELECT 1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.(steps.AsyncStep).Start(t.Context(), input(1))
	if err == nil || !strings.Contains(err.Error(), "create the client") || !strings.Contains(err.Error(), "application-default login") {
		t.Fatalf("start without credentials: %v, want the client's error and what to do", err)
	}
	if !steps.IsPermanent(err) {
		t.Fatalf("missing credentials not permanent: %v", err)
	}
	_, err = st.(steps.AsyncStep).Check(t.Context(), input(1), []byte(`{"project":"my-project","location":"US","job_id":"j"}`))
	if !steps.IsPermanent(err) {
		t.Fatalf("check without credentials: %v, want permanent", err)
	}
}

// Labels, project IDs and prefixes follow BigQuery's and Google Cloud's rules.
func TestSettingsLabelsProjectAndPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]any
		ok   bool
	}{
		{"international label", map[string]any{"labels": map[string]any{"équipe": "données-2026_x"}}, true},
		{"uppercase label value", map[string]any{"labels": map[string]any{"team": "Data"}}, false},
		{"label key starting with a digit", map[string]any{"labels": map[string]any{"1team": "data"}}, false},
		{"empty label value", map[string]any{"labels": map[string]any{"flag": ""}}, true},
		{"label value of 64 characters", map[string]any{"labels": map[string]any{"k": strings.Repeat("v", 64)}}, false},
		{"label value of 63 characters", map[string]any{"labels": map[string]any{"k": strings.Repeat("é", 63)}}, true},
		{"domain-scoped project", map[string]any{"project": "example.com:my-project"}, true},
		{"short project", map[string]any{"project": "abc"}, false},
		{"project ending with a hyphen", map[string]any{"project": "my-project-"}, false},
		{"prefix of 64", map[string]any{"job_prefix": strings.Repeat("p", 64)}, true},
		{"prefix of 65", map[string]any{"job_prefix": strings.Repeat("p", 65)}, false},
		{"region", map[string]any{"location": "europe-west1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{"project": "my-project", "location": "US", "query": "SELECT 1"}
			for k, v := range tc.set {
				m[k] = v
			}
			_, err := bigquery.Factory()(m)
			if (err == nil) != tc.ok {
				t.Fatalf("accepted %v, want %v: %v", err == nil, tc.ok, err)
			}
		})
	}
}
