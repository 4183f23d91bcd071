package cloudrunjob

import (
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pipelinehq/pipeline/steps"
)

const exName = "projects/acme/locations/europe-west1/jobs/load/executions/load-x7k2p"

// judge reads an execution's record: the Completed condition decides,
// else the completion time with the task counts; anything else is running.
func TestJudge(t *testing.T) {
	done := timestamppb.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	cond := func(s runpb.Condition_State, msg string, reason runpb.Condition_ExecutionReason) []*runpb.Condition {
		return []*runpb.Condition{
			{Type: "ResourcesAvailable", State: runpb.Condition_CONDITION_SUCCEEDED},
			{Type: completedCondition, State: s, Message: msg, Reasons: &runpb.Condition_ExecutionReason_{ExecutionReason: reason}},
		}
	}
	cases := []struct {
		name string
		ex   *runpb.Execution
		done bool
		fail string // "" : no error
	}{
		{"just created", &runpb.Execution{Reconciling: true, TaskCount: 2}, false, ""},
		{"running", &runpb.Execution{Reconciling: true, TaskCount: 2, RunningCount: 2,
			Conditions: cond(runpb.Condition_CONDITION_RECONCILING, "", 0)}, false, ""},
		{"succeeded", &runpb.Execution{TaskCount: 2, SucceededCount: 2, CompletionTime: done,
			Conditions: cond(runpb.Condition_CONDITION_SUCCEEDED, "", 0)}, true, ""},
		{"succeeded after retries", &runpb.Execution{TaskCount: 2, SucceededCount: 2, RetriedCount: 3, CompletionTime: done,
			Conditions: cond(runpb.Condition_CONDITION_SUCCEEDED, "", 0)}, true, ""},
		{"succeeded condition before the completion time", &runpb.Execution{TaskCount: 1, SucceededCount: 1,
			Conditions: cond(runpb.Condition_CONDITION_SUCCEEDED, "", 0)}, true, ""},
		{"failed", &runpb.Execution{TaskCount: 2, SucceededCount: 1, FailedCount: 1, CompletionTime: done,
			Conditions: cond(runpb.Condition_CONDITION_FAILED, "Task load-0 failed with exit code 1", runpb.Condition_NON_ZERO_EXIT_CODE)},
			false, "failed: Task load-0 failed with exit code 1 (tasks: 1 succeeded, 1 failed, 0 cancelled of 2)"},
		{"cancelled", &runpb.Execution{TaskCount: 2, CancelledCount: 2, CompletionTime: done,
			Conditions: cond(runpb.Condition_CONDITION_FAILED, "The execution was cancelled.", runpb.Condition_CANCELLED)},
			false, "was cancelled: The execution was cancelled."},
		{"completed without a condition, all tasks succeeded", &runpb.Execution{TaskCount: 3, SucceededCount: 3, CompletionTime: done}, true, ""},
		{"completed without a condition, a task failed", &runpb.Execution{TaskCount: 3, SucceededCount: 2, FailedCount: 1, CompletionTime: done},
			false, "failed: no message (tasks: 2 succeeded, 1 failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.ex.Name = exName
			isDone, out, err := judge(c.ex)
			if c.fail == "" {
				if err != nil || isDone != c.done || (c.done && !strings.Contains(string(out), `"execution":"`+exName+`"`)) {
					t.Fatalf("judge: %v %s %v", isDone, out, err)
				}
				return
			}
			if err == nil || !steps.IsPermanent(err) || isDone || !strings.Contains(err.Error(), c.fail) {
				t.Fatalf("judge: %v %v, want a permanent error with %q", isDone, err, c.fail)
			}
		})
	}
}

// Without a LogUri the logs link is a Cloud Logging query for the execution.
func TestLogsLink(t *testing.T) {
	got := logsLink(&runpb.Execution{Name: exName})
	for _, want := range []string{"https://console.cloud.google.com/logs/query;query=", "load-x7k2p", "?project=acme"} {
		if !strings.Contains(got, want) {
			t.Fatalf("link %s lacks %s", got, want)
		}
	}
	if got := logsLink(&runpb.Execution{Name: exName, LogUri: "https://logs.example/x"}); got != "https://logs.example/x" {
		t.Fatalf("link %s", got)
	}
}
