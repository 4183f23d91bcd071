package cloudrunjob

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"

	"github.com/pipelinehq/pipeline/steps"
)

// completedCondition is the type of an execution's terminal condition.
const completedCondition = "Completed"

// judge decides what an execution's record says: still running (false,
// nil, nil), succeeded (true, output, nil) or failed (a permanent error
// with the condition's message). The Completed condition decides when it
// has; otherwise a completion time with the task counts does.
func judge(ex *runpb.Execution) (bool, json.RawMessage, error) {
	var cond *runpb.Condition
	for _, c := range ex.GetConditions() {
		if c.GetType() == completedCondition {
			cond = c
		}
	}
	succeeded := false
	switch {
	case cond.GetState() == runpb.Condition_CONDITION_SUCCEEDED:
		succeeded = true
	case cond.GetState() == runpb.Condition_CONDITION_FAILED:
	case ex.GetCompletionTime() == nil:
		return false, nil, nil
	default:
		succeeded = ex.GetFailedCount() == 0 && ex.GetCancelledCount() == 0 && ex.GetSucceededCount() >= ex.GetTaskCount()
	}
	if !succeeded {
		return false, nil, steps.Permanent(failure(ex, cond))
	}
	out := output{
		Execution: ex.GetName(), TaskCount: ex.GetTaskCount(), Succeeded: ex.GetSucceededCount(),
		Failed: ex.GetFailedCount(), Cancelled: ex.GetCancelledCount(), Retried: ex.GetRetriedCount(),
		Logs: logsLink(ex),
	}
	if t := ex.GetCompletionTime(); t != nil {
		out.CompletedAt = t.AsTime().UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(out)
	return true, b, err
}

// failure describes a failed or cancelled execution.
func failure(ex *runpb.Execution, cond *runpb.Condition) error {
	what := "failed"
	if ex.GetCancelledCount() > 0 || cond.GetExecutionReason() == runpb.Condition_CANCELLED {
		what = "was cancelled"
	}
	msg := strings.TrimSpace(cond.GetMessage())
	if msg == "" {
		msg = "no message"
	}
	return fmt.Errorf("cloudrun.job: execution %s %s: %s (tasks: %d succeeded, %d failed, %d cancelled of %d); logs: %s",
		ex.GetName(), what, msg, ex.GetSucceededCount(), ex.GetFailedCount(), ex.GetCancelledCount(), ex.GetTaskCount(), logsLink(ex))
}

// logsLink is the execution's logs in the console: its LogUri, or a Cloud
// Logging query for it when the API gave none.
func logsLink(ex *runpb.Execution) string {
	if ex.GetLogUri() != "" {
		return ex.GetLogUri()
	}
	// projects/P/locations/R/jobs/J/executions/E
	parts := strings.Split(ex.GetName(), "/")
	if len(parts) != 8 {
		return ""
	}
	query := fmt.Sprintf(`resource.type="cloud_run_job" resource.labels.job_name="%s" labels."run.googleapis.com/execution_name"="%s"`, parts[5], parts[7])
	return "https://console.cloud.google.com/logs/query;query=" + url.PathEscape(query) + "?project=" + url.QueryEscape(parts[1])
}
