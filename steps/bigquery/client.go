package bigquery

import (
	"context"
	"fmt"
	"sync"

	bqapi "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/option"

	"github.com/pipelinehq/pipeline/steps"
)

// lazyService creates the BigQuery client on first use: the kind is
// registered on every backend, also where there are no Google credentials
// until a pipeline uses it. A failed creation is retried at the next use.
type lazyService struct {
	opts []option.ClientOption

	mu  sync.Mutex
	svc *bqapi.Service
}

// jobs returns the jobs service, creating the client if need be.
func (l *lazyService) jobs(ctx context.Context) (*bqapi.JobsService, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.svc == nil {
		// The client outlives this request (token refreshes use the
		// context it was made with): it must not end with it.
		opts := append([]option.ClientOption{option.WithScopes(bqapi.BigqueryScope)}, l.opts...)
		svc, err := bqapi.NewService(context.WithoutCancel(ctx), opts...)
		if err != nil {
			// No usable credentials: retrying (a start's attempts, checks
			// until the step's timeout) cannot change that.
			return nil, steps.Permanent(fmt.Errorf("%s: create the client with Google's default credentials: %w "+
				"(on Cloud Run the service's account; locally `gcloud auth application-default login` or GOOGLE_APPLICATION_CREDENTIALS)", Kind, err))
		}
		l.svc = svc
	}
	return l.svc.Jobs, nil
}
