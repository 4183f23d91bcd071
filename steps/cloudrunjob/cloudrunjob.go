// Package cloudrunjob is the `cloudrun.job` step kind: an asynchronous step
// (steps.AsyncStep) that runs a Cloud Run Job with overrides through the Run
// Admin API v2 and checks its execution, in short requests, until it
// completes. Its gRPC stand-in for tests is in steps/cloudrunjob/runtest.
//
// A pipeline file uses it so:
//
//	steps:
//	  - name: load
//	    kind: cloudrun.job
//	    timeout: 6h
//	    cloudrun.job:
//	      project: acme
//	      region: europe-west1
//	      job: nightly-load
//	      args: ["--date={{.Date}}"]
//	      env: {TARGET: "{{.Params.target}}"}
//	      task_count: 4
//	      timeout: 2h
//	      check_interval: 5m
//
// See New for the settings and Step for what it does.
package cloudrunjob

import (
	"context"
	"errors"
	"fmt"
	"sync"

	run "cloud.google.com/go/run/apiv2"
	"google.golang.org/api/option"

	"github.com/pipelinehq/pipeline/steps"
)

// Kind is the name pipeline files give the kind.
const Kind = "cloudrun.job"

// Clients are the Run API clients the kind's steps share. They are created
// on first use, with Google's default credentials and the options given to
// NewClients (tests point them at a stand-in with option.WithEndpoint), so
// that registering the kind costs nothing where no pipeline uses it.
type Clients struct {
	opts []option.ClientOption

	mu    sync.Mutex
	jobs  *run.JobsClient
	execs *run.ExecutionsClient
}

// NewClients returns clients that connect on first use with opts.
func NewClients(opts ...option.ClientOption) *Clients {
	return &Clients{opts: opts}
}

// Register adds the kind to reg, its steps sharing c.
func Register(reg *steps.Registry, c *Clients) {
	reg.Register(Kind, c.New)
}

// get returns the clients, creating them the first time. A failure is not
// kept: the next call tries again.
func (c *Clients) get(ctx context.Context) (*run.JobsClient, *run.ExecutionsClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs != nil {
		return c.jobs, c.execs, nil
	}
	// The clients outlive this request: dial with a context that is never
	// cancelled.
	dial := context.WithoutCancel(ctx)
	jobs, err := run.NewJobsClient(dial, c.opts...)
	if err != nil {
		return nil, nil, credentialsHint(fmt.Errorf("cloudrun.job: Run API client: %w", err))
	}
	execs, err := run.NewExecutionsClient(dial, c.opts...)
	if err != nil {
		_ = jobs.Close()
		return nil, nil, credentialsHint(fmt.Errorf("cloudrun.job: Run API client: %w", err))
	}
	c.jobs, c.execs = jobs, execs
	return jobs, execs, nil
}

// credentialsHint marks a client that cannot be built as a permanent error
// (no credentials: retrying does not help) and says what to do.
func credentialsHint(err error) error {
	return steps.Permanent(fmt.Errorf("%w (the kind uses Google's default credentials: on Cloud Run the service account, "+
		"locally `gcloud auth application-default login` or GOOGLE_APPLICATION_CREDENTIALS)", err))
}

// Close closes the clients, if they were created.
func (c *Clients) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs == nil {
		return nil
	}
	err := errors.Join(c.jobs.Close(), c.execs.Close())
	c.jobs, c.execs = nil, nil
	return err
}
