package bigquery

import (
	"regexp"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// CheckInterval is the wait between checks the step's check_interval asks
// for (0: the orchestrator's default).
func (q *queryStep) CheckInterval() time.Duration { return q.interval }

// IAMGrants lists the roles the step's calls need: roles/bigquery.jobUser
// on the project the job runs in, and roles/bigquery.dataEditor on the
// destination table's dataset when destination_table is set (as
// PROJECT:DATASET when the settings name it without a template).
func (q *queryStep) IAMGrants() []steps.IAMGrant {
	out := []steps.IAMGrant{{Role: "roles/bigquery.jobUser", Resource: "project " + q.project,
		Why: "the start inserts the query job in the project, the checks read it, a cancel cancels it (a query that writes tables by DML or DDL also needs roles/bigquery.dataEditor on their datasets, which the settings do not name)"}}
	if q.destText == "" {
		return out
	}
	out = append(out, steps.IAMGrant{Role: "roles/bigquery.dataEditor", Resource: destinationDataset(q.destText, q.project),
		Why: "the query writes its result to destination_table " + q.destText})
	return out
}

// destinationDataset names the dataset of destination_table dest as
// PROJECT:DATASET, or describes it where a template chooses it.
func destinationDataset(dest, project string) string {
	// A template action may hold dots (.Params.x): count the parts with
	// each action as one placeholder.
	parts := strings.Split(templateAction.ReplaceAllString(strings.Trim(dest, "`"), "{{}}"), ".")
	if len(parts) == 2 {
		parts = append([]string{project}, parts...)
	}
	if len(parts) != 3 || strings.Contains(parts[0], "{{") || strings.Contains(parts[1], "{{") {
		return "the dataset of destination_table " + dest + " (chosen by its template at run time)"
	}
	return parts[0] + ":" + parts[1]
}

// templateAction is one {{...}} action of a template.
var templateAction = regexp.MustCompile(`\{\{.*?\}\}`)
