package doctor

import (
	"context"
	"fmt"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"

	"github.com/pipelinehq/pipeline/pipeline"
)

// queue checks the Cloud Tasks queue: it exists, it is running, and it
// retries a task more often than any step's max_attempts.
func (o Online) queue(ctx context.Context, cfg Config, defs []*pipeline.Definition) []Finding {
	if cfg.TasksLocation == "" || cfg.TasksQueue == "" {
		return []Finding{{
			Severity: SeverityWarning, Check: "queue",
			Problem: "CLOUD_TASKS_LOCATION or CLOUD_TASKS_QUEUE is not set; the queue was not checked",
			Why:     "the service cannot enqueue steps without them",
			Fix:     cfg.runUpdate() + " --update-env-vars CLOUD_TASKS_LOCATION=" + cfg.region() + ",CLOUD_TASKS_QUEUE=" + cfg.service(),
		}}
	}
	name := fmt.Sprintf("projects/%s/locations/%s/queues/%s", cfg.Project, cfg.TasksLocation, cfg.TasksQueue)
	subject := "Cloud Tasks queue " + cfg.TasksQueue
	most := 0
	for _, d := range defs {
		for _, s := range d.Steps {
			most = max(most, s.MaxAttempts)
		}
	}
	want := int32(max(most+1, 25))
	where := " --project " + cfg.Project + " --location " + cfg.TasksLocation
	q, err := get(ctx, o, name, o.Cloud.GetQueue)
	switch {
	case notFound(err):
		return []Finding{{
			Severity: SeverityError, Check: "queue", Subject: subject,
			Problem: fmt.Sprintf("does not exist (%s)", name),
			Why:     "every step is enqueued there: POST /pipeline/start fails with 5xx and no chain runs",
			Fix: fmt.Sprintf("gcloud tasks queues create %s%s --max-attempts=%d --min-backoff=10s --max-backoff=300s --max-doublings=5 --max-dispatches-per-second=50 --max-concurrent-dispatches=100",
				cfg.TasksQueue, where, want),
		}}
	case err != nil:
		return []Finding{o.unreachable(cfg, tasksAPI, "queue "+name, err)}
	}
	var out []Finding
	switch st := q.GetState(); st {
	case cloudtaskspb.Queue_RUNNING:
	default:
		out = append(out, Finding{
			Severity: SeverityError, Check: "queue", Subject: subject,
			Problem: fmt.Sprintf("is %s, not RUNNING", st),
			Why:     "tasks are accepted but not delivered: every run stops after its start",
			Fix:     "gcloud tasks queues resume " + cfg.TasksQueue + where,
		})
	}
	got := q.GetRetryConfig().GetMaxAttempts() // -1 unlimited
	if got > 0 && int(got) <= most {
		out = append(out, Finding{
			Severity: SeverityError, Check: "queue", Subject: subject,
			Problem: fmt.Sprintf("retry_config.max_attempts is %d, not above the largest step max_attempts %d", got, most),
			Why:     "the queue drops a task before the step has used its attempts (a 409 while a lease is held also uses one), so the step is never marked failed, nobody is notified, and the chain silently stops",
			Fix:     fmt.Sprintf("gcloud tasks queues update %s%s --max-attempts=%d", cfg.TasksQueue, where, want),
		})
	}
	if got != 0 && cfg.QueueMaxAttempts != 0 && cfg.QueueMaxAttempts != int(got) {
		out = append(out, Finding{
			Severity: SeverityWarning, Check: "queue", Subject: subject,
			Problem: fmt.Sprintf("QUEUE_MAX_ATTEMPTS is %d but the queue's max_attempts is %d", cfg.QueueMaxAttempts, got),
			Why:     "the offline attempt check trusts QUEUE_MAX_ATTEMPTS; it should say what the queue does",
			Fix:     fmt.Sprintf("%s --update-env-vars QUEUE_MAX_ATTEMPTS=%d", cfg.runUpdate(), got),
		})
	}
	return out
}
