package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/iam/apiv1/iampb"
	run "cloud.google.com/go/run/apiv2"
	scheduler "cloud.google.com/go/scheduler/apiv1"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/pipelinehq/pipeline/pipeline"
)

// GCP is the Cloud of the real APIs, over gRPC with the Cloud client
// libraries: Cloud Tasks v2, Cloud Scheduler v1 and Cloud Run v2.
type GCP struct {
	tasks     *cloudtasks.Client
	scheduler *scheduler.CloudSchedulerClient
	run       *run.ServicesClient
}

var _ Cloud = (*GCP)(nil)

// NewGCP builds the three clients with opts (credentials; or, for a
// stand-in, option.WithEndpoint, option.WithoutAuthentication and an
// insecure gRPC dial option). No call is made until a check runs.
func NewGCP(ctx context.Context, opts ...option.ClientOption) (*GCP, error) {
	g := &GCP{}
	var err error
	if g.tasks, err = cloudtasks.NewClient(ctx, opts...); err != nil {
		return nil, fmt.Errorf("doctor: cloud tasks client: %w", err)
	}
	if g.scheduler, err = scheduler.NewCloudSchedulerClient(ctx, opts...); err != nil {
		_ = g.Close()
		return nil, fmt.Errorf("doctor: cloud scheduler client: %w", err)
	}
	if g.run, err = run.NewServicesClient(ctx, opts...); err != nil {
		_ = g.Close()
		return nil, fmt.Errorf("doctor: cloud run client: %w", err)
	}
	return g, nil
}

// GetQueue implements Cloud.
func (g *GCP) GetQueue(ctx context.Context, name string) (*cloudtaskspb.Queue, error) {
	return g.tasks.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: name})
}

// GetJob implements Cloud.
func (g *GCP) GetJob(ctx context.Context, name string) (*schedulerpb.Job, error) {
	return g.scheduler.GetJob(ctx, &schedulerpb.GetJobRequest{Name: name})
}

// GetServiceIAMPolicy implements Cloud (google.cloud.run.v2.Services/GetIamPolicy).
func (g *GCP) GetServiceIAMPolicy(ctx context.Context, name string) (*iampb.Policy, error) {
	return g.run.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: name})
}

// Close closes the clients.
func (g *GCP) Close() error {
	var errs []error
	if g.tasks != nil {
		errs = append(errs, g.tasks.Close())
	}
	if g.scheduler != nil {
		errs = append(errs, g.scheduler.Close())
	}
	if g.run != nil {
		errs = append(errs, g.run.Close())
	}
	return errors.Join(errs...)
}

// CredentialsFinder finds Google credentials; google.FindDefaultCredentials
// (Application Default Credentials) is the one the doctor uses.
type CredentialsFinder func(ctx context.Context, scopes ...string) (*google.Credentials, error)

// OnlineOptions says how CheckOnline reaches Google Cloud.
type OnlineOptions struct {
	// Offline skips the online checks.
	Offline bool
	// FindCredentials finds the credentials; nil means
	// google.FindDefaultCredentials. Without credentials the online checks
	// are skipped.
	FindCredentials CredentialsFinder
	// ClientOptions are added after the credentials found (an endpoint, a
	// dial option).
	ClientOptions []option.ClientOption
	// Timeout bounds the credentials lookup and each call; zero means
	// DefaultOnlineTimeout.
	Timeout time.Duration
}

// cloudScope is the OAuth scope the three APIs take.
const cloudScope = "https://www.googleapis.com/auth/cloud-platform"

// CheckOnline runs the online checks when credentials are present, and
// returns their findings and a one-line note saying what was checked or why
// nothing was (offline, no credentials, not the gcp backend). It never fails:
// what cannot be reached is a warning finding.
func CheckOnline(ctx context.Context, cfg Config, defs []*pipeline.Definition, opts OnlineOptions) ([]Finding, string) {
	const skipped = "online checks skipped: "
	timeout := Online{Timeout: opts.Timeout}.timeout()
	switch {
	case opts.Offline:
		return nil, skipped + "--offline"
	case !gcp(cfg):
		return nil, skipped + "PIPELINE_BACKEND is not gcp"
	}
	find := opts.FindCredentials
	if find == nil {
		find = google.FindDefaultCredentials
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	creds, err := find(fctx, cloudScope)
	cancel()
	if err != nil {
		return nil, skipped + "no Google credentials (" + firstLine(err.Error()) + "); `gcloud auth application-default login` to check the live queue, Scheduler jobs and IAM policy"
	}
	g, err := NewGCP(ctx, append([]option.ClientOption{option.WithCredentials(creds)}, opts.ClientOptions...)...)
	if err != nil {
		return []Finding{{
			Severity: SeverityWarning, Check: "online",
			Problem: err.Error(), Why: "the live queue, Scheduler jobs and IAM policy were not checked",
			Fix: "gcloud auth application-default login, then run the doctor again",
		}}, skipped + "the Google Cloud clients could not be built"
	}
	defer func() { _ = g.Close() }()
	found := Online{Cloud: g, Timeout: timeout}.Run(ctx, cfg, defs)
	jobs := len(Schedules(defs)) + 1
	return found, fmt.Sprintf("online checks: queue %s, %d Scheduler job(s), the IAM policy of service %s (project %s)",
		orPlaceholder(cfg.TasksQueue, "?"), jobs, cfg.service(), orPlaceholder(cfg.Project, "?"))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Merge joins offline and online findings: errors first, and a finding both
// report (the same check, subject and problem) once.
func Merge(lists ...[]Finding) []Finding {
	var out []Finding
	for _, f := range slices.Concat(lists...) {
		if !slices.ContainsFunc(out, func(g Finding) bool {
			return g.Check == f.Check && g.Subject == f.Subject && g.Problem == f.Problem
		}) {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	return out
}
