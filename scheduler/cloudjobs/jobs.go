// Package cloudjobs pauses and resumes the Cloud Scheduler jobs that start
// the pipelines (pipeline.JobControl on GCP). The deploy scripts name a
// pipeline's job SERVICE-PIPELINE in the service's region.
package cloudjobs

import (
	"context"
	"errors"
	"fmt"
	"sync"

	scheduler "cloud.google.com/go/scheduler/apiv1"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"

	"github.com/pipelinehq/pipeline/pipeline"
)

// API is the part of the Cloud Scheduler client the jobs use.
type API interface {
	PauseJob(ctx context.Context, req *schedulerpb.PauseJobRequest, opts ...gax.CallOption) (*schedulerpb.Job, error)
	ResumeJob(ctx context.Context, req *schedulerpb.ResumeJobRequest, opts ...gax.CallOption) (*schedulerpb.Job, error)
}

// Jobs controls the Scheduler jobs of one deployment.
type Jobs struct {
	project, region, service string

	mu     sync.Mutex
	api    API
	dial   func(ctx context.Context) (API, error)
	closer func() error
}

var _ pipeline.JobControl = (*Jobs)(nil)

// New returns the jobs of service (K_SERVICE) in project and region. The
// Cloud Scheduler client is created on first use with opts, so a service that
// never pauses never dials it.
func New(project, region, service string, opts ...option.ClientOption) (*Jobs, error) {
	j := &Jobs{project: project, region: region, service: service}
	if err := j.check(); err != nil {
		return nil, err
	}
	j.dial = func(ctx context.Context) (API, error) {
		c, err := scheduler.NewCloudSchedulerClient(context.WithoutCancel(ctx), opts...)
		if err != nil {
			return nil, err
		}
		j.closer = c.Close
		return c, nil
	}
	return j, nil
}

// NewWithAPI returns jobs that call api (a test's stand-in, or a client made
// elsewhere).
func NewWithAPI(project, region, service string, api API) (*Jobs, error) {
	j := &Jobs{project: project, region: region, service: service, api: api}
	return j, j.check()
}

func (j *Jobs) check() error {
	var errs []error
	if j.project == "" {
		errs = append(errs, errors.New("GOOGLE_CLOUD_PROJECT is not set"))
	}
	if j.region == "" {
		errs = append(errs, errors.New("the jobs' region is not known (set CLOUD_RUN_REGION, or CLOUD_TASKS_LOCATION)"))
	}
	if j.service == "" {
		errs = append(errs, errors.New("the service name is not known (set K_SERVICE; jobs are named SERVICE-PIPELINE)"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cloudjobs: %w", err)
	}
	return nil
}

// Name is the full resource name of a pipeline's job.
func (j *Jobs) Name(pipelineName string) string {
	return fmt.Sprintf("projects/%s/locations/%s/jobs/%s-%s", j.project, j.region, j.service, pipelineName)
}

func (j *Jobs) client(ctx context.Context) (API, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.api == nil {
		api, err := j.dial(ctx)
		if err != nil {
			return nil, fmt.Errorf("cloudjobs: Cloud Scheduler client: %w", err)
		}
		j.api = api
	}
	return j.api, nil
}

// PauseJob pauses the pipeline's job (pausing a paused job is a no-op).
func (j *Jobs) PauseJob(ctx context.Context, pipelineName string) error {
	api, err := j.client(ctx)
	if err != nil {
		return err
	}
	if _, err := api.PauseJob(ctx, &schedulerpb.PauseJobRequest{Name: j.Name(pipelineName)}); err != nil {
		return fmt.Errorf("cloudjobs: pause %s (needs cloudscheduler.jobs.pause): %w", j.Name(pipelineName), err)
	}
	return nil
}

// ResumeJob resumes the pipeline's job (resuming an enabled job is a no-op).
func (j *Jobs) ResumeJob(ctx context.Context, pipelineName string) error {
	api, err := j.client(ctx)
	if err != nil {
		return err
	}
	if _, err := api.ResumeJob(ctx, &schedulerpb.ResumeJobRequest{Name: j.Name(pipelineName)}); err != nil {
		return fmt.Errorf("cloudjobs: resume %s (needs cloudscheduler.jobs.resume): %w", j.Name(pipelineName), err)
	}
	return nil
}

// Close closes the client if New created one.
func (j *Jobs) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closer == nil {
		return nil
	}
	return j.closer()
}
