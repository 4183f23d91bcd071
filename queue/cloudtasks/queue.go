package cloudtasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ctapi "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Queue enqueues step tasks on one Cloud Tasks queue.
type Queue struct {
	client  *ctapi.Client
	parent  string
	baseURL string
	email   string
	aud     string
	now     func() time.Time
}

var _ pipeline.Queue = (*Queue)(nil)

// New validates cfg and opens a Cloud Tasks client. With cfg.EmulatorHost set
// it dials that host over plain gRPC without credentials. opts are applied
// after the options New derives from cfg.
func New(ctx context.Context, cfg Config, opts ...option.ClientOption) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var all []option.ClientOption
	if cfg.EmulatorHost != "" {
		all = append(all,
			option.WithEndpoint(cfg.EmulatorHost),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		)
	}
	all = append(all, opts...)
	client, err := ctapi.NewClient(ctx, all...)
	if err != nil {
		return nil, fmt.Errorf("cloudtasks: new client for %s: %w", cfg.QueuePath(), err)
	}
	return &Queue{
		client:  client,
		parent:  cfg.QueuePath(),
		baseURL: strings.TrimSuffix(cfg.ServiceURL, "/"),
		email:   cfg.ServiceAccount,
		aud:     cfg.audience(),
		now:     time.Now,
	}, nil
}

// QueuePath is the resource name of the queue tasks go to.
func (q *Queue) QueuePath() string { return q.parent }

// Enqueue creates the task on the queue. A task whose name is already taken
// (AlreadyExists) counts as enqueued. Unavailable, DeadlineExceeded and
// ResourceExhausted are retried a few times with jittered backoff; that is
// safe because the name is deterministic.
func (q *Queue) Enqueue(ctx context.Context, t pipeline.Task) error {
	task, err := q.task(t)
	if err != nil {
		return err
	}
	_, err = q.client.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: q.parent, Task: task}, createRetry())
	switch {
	case err == nil:
		return nil
	case status.Code(err) == codes.AlreadyExists:
		return nil
	case status.Code(err) == codes.InvalidArgument:
		return fmt.Errorf("cloudtasks: create task %s: %w: %w", t.Name, pipeline.ErrInvalid, err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", err, ctxErr)
	}
	return fmt.Errorf("cloudtasks: create task %s: %w", t.Name, err)
}

// Close releases the client's connections.
func (q *Queue) Close() error {
	if err := q.client.Close(); err != nil {
		return fmt.Errorf("cloudtasks: close client: %w", err)
	}
	return nil
}
