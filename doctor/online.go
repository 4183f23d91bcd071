package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/pipeline"
)

// DefaultOnlineTimeout bounds each call the online checks make.
const DefaultOnlineTimeout = 10 * time.Second

// Cloud reads the live resources the online checks hold the configuration
// against. GCP implements it with the Cloud client libraries.
type Cloud interface {
	// GetQueue returns the Cloud Tasks queue projects/P/locations/L/queues/Q.
	GetQueue(ctx context.Context, name string) (*cloudtaskspb.Queue, error)
	// GetJob returns the Cloud Scheduler job projects/P/locations/L/jobs/J.
	GetJob(ctx context.Context, name string) (*schedulerpb.Job, error)
	// GetServiceIAMPolicy returns the IAM policy of the Cloud Run service
	// projects/P/locations/L/services/S.
	GetServiceIAMPolicy(ctx context.Context, name string) (*iampb.Policy, error)
}

// Online runs the checks against the live resources: the Cloud Tasks queue,
// each Scheduler job, and the Cloud Run service's IAM policy.
type Online struct {
	// Cloud answers the calls; it must be set.
	Cloud Cloud
	// Timeout bounds each call; zero means DefaultOnlineTimeout.
	Timeout time.Duration
}

// Run checks the queue, the Scheduler jobs and the service's IAM policy (the
// three APIs at once) and returns the findings, errors first. An API that
// does not answer, or refuses the caller, gives a warning naming what is
// missing; it never fails the run. Nothing is checked unless cfg.Backend is
// gcp (the Backend check says so).
func (o Online) Run(ctx context.Context, cfg Config, defs []*pipeline.Definition) []Finding {
	if !gcp(cfg) {
		return nil
	}
	if cfg.Project == "" {
		return []Finding{{
			Severity: SeverityWarning, Check: "online",
			Problem: "GOOGLE_CLOUD_PROJECT is not set; the queue, the Scheduler jobs and the service's IAM policy were not checked",
			Why:     "the live resources are named after the project",
			Fix:     "export GOOGLE_CLOUD_PROJECT=$(gcloud config get-value project) and run the doctor again",
		}}
	}
	groups := []func(context.Context, Config, []*pipeline.Definition) []Finding{o.queue, o.jobs, o.invokers, o.asyncInvokers}
	found := make([][]Finding, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { found[i] = g(ctx, cfg, defs) })
	}
	wg.Wait()
	out := slices.Concat(found...)
	slices.SortStableFunc(out, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	return out
}

func (o Online) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultOnlineTimeout
}

// get calls f with a context bounded by the timeout.
func get[T any](ctx context.Context, o Online, name string, f func(context.Context, string) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	return f(ctx, name)
}

// cloudAPI describes one API for the findings about reaching it.
type cloudAPI struct {
	title, service, permission, role string
}

var (
	tasksAPI     = cloudAPI{"Cloud Tasks", "cloudtasks.googleapis.com", "cloudtasks.queues.get", "roles/cloudtasks.viewer"}
	schedulerAPI = cloudAPI{"Cloud Scheduler", "cloudscheduler.googleapis.com", "cloudscheduler.jobs.get", "roles/cloudscheduler.viewer"}
	runAPI       = cloudAPI{"Cloud Run", "run.googleapis.com", "run.services.getIamPolicy", "roles/run.viewer"}
)

func notFound(err error) bool { return status.Code(err) == codes.NotFound }

// unreachable is the warning for a call that failed other than NotFound:
// the doctor could not look, so it cannot say the resource is wrong.
func (o Online) unreachable(cfg Config, api cloudAPI, what string, err error) Finding {
	f := Finding{
		Severity: SeverityWarning, Check: "online", Subject: api.title + " API",
		Problem: fmt.Sprintf("could not read %s: %v", what, err),
		Why:     "the doctor cannot tell whether it is configured right",
	}
	var ae *apierror.APIError
	disabled := errors.As(err, &ae) && ae.Reason() == "SERVICE_DISABLED" || strings.Contains(err.Error(), "it is disabled")
	switch code := status.Code(err); {
	case disabled:
		f.Problem = fmt.Sprintf("the %s API is not enabled in project %s", api.title, cfg.Project)
		f.Why = "the service cannot use it, and the doctor cannot check " + what
		f.Fix = "gcloud services enable " + api.service + " --project " + cfg.Project
	case code == codes.PermissionDenied:
		f.Problem = fmt.Sprintf("permission %s denied reading %s", api.permission, what)
		f.Fix = "gcloud projects add-iam-policy-binding " + cfg.Project + " --member=user:$(gcloud config get-value account) --role=" + api.role + "   (or run the doctor as an account that has it)"
	case code == codes.Unauthenticated:
		f.Problem = fmt.Sprintf("the credentials were refused reading %s: %v", what, err)
		f.Fix = "gcloud auth application-default login"
	case code == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		f.Problem = fmt.Sprintf("the %s API did not answer within %s reading %s", api.title, o.timeout(), what)
		f.Fix = "check the network path to " + api.service + " (proxy, VPC Service Controls), then run the doctor again"
	default:
		f.Fix = "check the network path to " + api.service + " and the error above, then run the doctor again"
	}
	return f
}

// region is where the service and the Scheduler jobs live ("" unknown).
func (c Config) liveRegion() string { return firstNonEmpty(c.Region, c.TasksLocation) }

// regionUnknown is the warning when the online checks cannot name a resource.
func regionUnknown(what string) Finding {
	return Finding{
		Severity: SeverityWarning, Check: "online",
		Problem: "the region is not known (CLOUD_RUN_REGION or CLOUD_TASKS_LOCATION); " + what + " not checked",
		Why:     "the live resources are named after their region",
		Fix:     "run the doctor with --region REGION (or CLOUD_RUN_REGION set)",
	}
}
