package bigquery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/bigquery"
)

// grantsAndInterval is what `pipeline doctor` asks of an asynchronous kind.
type grantsAndInterval interface {
	IAMGrants() []steps.IAMGrant
	CheckInterval() time.Duration
}

// The step names bigquery.jobUser on its project, and bigquery.dataEditor
// on its destination table's dataset when it has one (described where a
// template chooses it); its check interval is its check_interval setting.
func TestIAMGrantsAndCheckInterval(t *testing.T) {
	cases := []struct {
		name, dest, interval string
		wantInterval         time.Duration
		want                 []string
	}{
		{"no destination", "", "", 0, []string{"roles/bigquery.jobUser on project acme-prod"}},
		{"dataset.table", "sales.daily", "2m", 2 * time.Minute, []string{"roles/bigquery.jobUser on project acme-prod", "roles/bigquery.dataEditor on acme-prod:sales"}},
		{"project.dataset.table", "other-proj.mart.daily_{{.Params.day}}", "", 0, []string{"roles/bigquery.jobUser on project acme-prod", "roles/bigquery.dataEditor on other-proj:mart"}},
		{"templated dataset", "{{.Params.dataset}}.daily", "", 0, []string{"roles/bigquery.jobUser on project acme-prod",
			"roles/bigquery.dataEditor on the dataset of destination_table {{.Params.dataset}}.daily (chosen by its template at run time)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := map[string]any{"project": "acme-prod", "location": "EU", "query": "SELECT 1"}
			if tc.dest != "" {
				s["destination_table"] = tc.dest
			}
			if tc.interval != "" {
				s["check_interval"] = tc.interval
			}
			st, err := bigquery.Factory()(s)
			if err != nil {
				t.Fatal(err)
			}
			g, ok := st.(grantsAndInterval)
			if !ok {
				t.Fatalf("%T does not name its roles and check interval", st)
			}
			if got := g.CheckInterval(); got != tc.wantInterval {
				t.Errorf("check interval %s, want %s", got, tc.wantInterval)
			}
			var got []string
			for _, gr := range g.IAMGrants() {
				got = append(got, gr.Role+" on "+gr.Resource)
				if gr.Why == "" {
					t.Errorf("grant %s says not why", gr.Role)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("grants:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
