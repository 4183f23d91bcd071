package cloudtasks

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Cloud Tasks limits.
const (
	// MaxTaskSize is the largest task Cloud Tasks accepts.
	MaxTaskSize = 100 * 1024
	// MinDispatchDeadline and MaxDispatchDeadline bound an HTTP task's
	// dispatch deadline; DefaultDispatchDeadline applies when none is set.
	MinDispatchDeadline     = 15 * time.Second
	MaxDispatchDeadline     = 30 * time.Minute
	DefaultDispatchDeadline = 10 * time.Minute
	// DeadlineMargin is added to a task's Deadline so that the queue does not
	// give up on a delivery the handler is about to finish.
	DeadlineMargin = 30 * time.Second
)

// DispatchDeadline is the dispatch deadline of a task whose delivery may take d:
// d plus DeadlineMargin clamped to Cloud Tasks' [15 s, 30 min], or the default
// 10 min when d is zero.
func DispatchDeadline(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultDispatchDeadline
	}
	return min(max(d+DeadlineMargin, MinDispatchDeadline), MaxDispatchDeadline)
}

// task builds the Cloud Tasks task for t.
func (q *Queue) task(t pipeline.Task) (*cloudtaskspb.Task, error) {
	if !pipeline.ValidTaskID(t.Name) {
		return nil, fmt.Errorf("cloudtasks: task name %q: %w: must match %s", t.Name, pipeline.ErrInvalid, pipeline.TaskIDPattern)
	}
	if t.Payload.Step == "" || url.PathEscape(t.Payload.Step) != t.Payload.Step {
		return nil, fmt.Errorf("cloudtasks: task %s: %w: step %q cannot be a URL path segment", t.Name, pipeline.ErrInvalid, t.Payload.Step)
	}
	if t.Deadline < 0 || t.Delay < 0 {
		return nil, fmt.Errorf("cloudtasks: task %s: %w: negative deadline %s or delay %s", t.Name, pipeline.ErrInvalid, t.Deadline, t.Delay)
	}
	body, err := json.Marshal(t.Payload)
	if err != nil {
		return nil, fmt.Errorf("cloudtasks: task %s: encode payload: %w", t.Name, err)
	}
	task := &cloudtaskspb.Task{
		Name: q.parent + "/tasks/" + t.Name,
		MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
			Url:        q.baseURL + t.Payload.Path(),
			HttpMethod: cloudtaskspb.HttpMethod_POST,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       body,
			AuthorizationHeader: &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{
				ServiceAccountEmail: q.email,
				Audience:            q.aud,
			}},
		}},
		DispatchDeadline: durationpb.New(DispatchDeadline(t.Deadline)),
	}
	if t.Delay > 0 {
		task.ScheduleTime = timestamppb.New(q.now().Add(t.Delay))
	}
	if n := proto.Size(task); n > MaxTaskSize {
		return nil, fmt.Errorf("cloudtasks: task %s: %w: %d bytes, Cloud Tasks takes at most %d", t.Name, pipeline.ErrTooLarge, n, MaxTaskSize)
	}
	return task, nil
}
