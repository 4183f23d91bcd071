package emulator

import (
	"container/heap"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Cloud Tasks limits the emulator enforces.
const (
	maxTaskSize             = 100 * 1024
	maxURLLength            = 2083
	minDispatchDeadline     = 15 * time.Second
	maxDispatchDeadline     = 30 * time.Minute
	defaultDispatchDeadline = 10 * time.Minute
	maxPageSize             = 1000
	maxDoublings            = 16
)

// server implements the CloudTasks gRPC service on an Emulator.
type server struct {
	cloudtaskspb.UnimplementedCloudTasksServer
	e *Emulator
}

var _ cloudtaskspb.CloudTasksServer = (*server)(nil)

// newQueue is a queue as CreateQueue or first use makes it.
func (e *Emulator) newQueue(name string) *cloudtaskspb.Queue {
	return &cloudtaskspb.Queue{
		Name:  name,
		State: cloudtaskspb.Queue_RUNNING,
		RateLimits: &cloudtaskspb.RateLimits{
			MaxConcurrentDispatches: int32(e.cfg.MaxConcurrent),
		},
		RetryConfig: &cloudtaskspb.RetryConfig{
			MaxAttempts:  int32(e.cfg.MaxAttempts),
			MinBackoff:   durationpb.New(e.cfg.MinBackoff),
			MaxBackoff:   durationpb.New(e.cfg.MaxBackoff),
			MaxDoublings: maxDoublings,
		},
	}
}

// queueLocked returns the named queue, creating it on first use. e.mu must be held.
func (e *Emulator) queueLocked(name string) *cloudtaskspb.Queue {
	q, ok := e.queues[name]
	if !ok {
		q = e.newQueue(name)
		e.queues[name] = q
	}
	return q
}

// CreateTask validates and stores an HTTP task and schedules its dispatch.
func (s *server) CreateTask(_ context.Context, req *cloudtaskspb.CreateTaskRequest) (*cloudtaskspb.Task, error) {
	e := s.e
	parent := req.GetParent()
	if err := checkQueueName(parent); err != nil {
		return nil, err
	}
	pb, err := newTask(req.GetTask())
	if err != nil {
		return nil, err
	}
	if pb.Name == "" {
		pb.Name = parent + "/tasks/" + generatedID()
	} else if q, _, err := splitTaskName(pb.Name); err != nil {
		return nil, err
	} else if q != parent {
		return nil, status.Errorf(codes.InvalidArgument, "task %s is not in queue %s", pb.Name, parent)
	}
	now := time.Now()
	pb.CreateTime = timestamppb.New(now)
	if pb.ScheduleTime == nil {
		pb.ScheduleTime = pb.CreateTime
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	var fault *Fault
	if len(e.faults) > 0 {
		fault, e.faults = &e.faults[0], e.faults[1:]
		e.stats.Faulted++
		if !fault.AfterCommit {
			return nil, status.Errorf(fault.Code, "injected fault on task %s", pb.Name)
		}
	}
	if e.taken(pb.Name, now) {
		e.stats.AlreadyExists++
		e.signalLocked()
		return nil, status.Errorf(codes.AlreadyExists, "task %s already exists or existed recently", pb.Name)
	}
	e.queueLocked(parent)
	e.seq++
	t := &task{pb: pb, queue: parent, due: pb.ScheduleTime.AsTime(), seq: e.seq, index: -1}
	e.tasks[pb.Name] = t
	heap.Push(&e.due, t)
	e.stats.Created++
	e.signalLocked()
	if fault != nil {
		return nil, status.Errorf(fault.Code, "injected fault after storing task %s", pb.Name)
	}
	return view(pb, req.GetResponseView()), nil
}

// newTask checks a task as Cloud Tasks does and returns the copy to store,
// with defaults filled in.
func newTask(in *cloudtaskspb.Task) (*cloudtaskspb.Task, error) {
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "task is required")
	}
	if n := proto.Size(in); n > maxTaskSize {
		return nil, status.Errorf(codes.InvalidArgument, "task size %d bytes exceeds the limit of %d", n, maxTaskSize)
	}
	if in.GetAppEngineHttpRequest() != nil {
		return nil, status.Error(codes.Unimplemented, "the emulator dispatches HTTP tasks only, not App Engine tasks")
	}
	hr := in.GetHttpRequest()
	if hr == nil {
		return nil, status.Error(codes.InvalidArgument, "task has no http_request")
	}
	u, err := url.Parse(hr.GetUrl())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(hr.GetUrl()) > maxURLLength {
		return nil, status.Errorf(codes.InvalidArgument, "http_request.url %q must be an absolute http(s) URL of at most %d characters", hr.GetUrl(), maxURLLength)
	}
	if hr.GetOauthToken() != nil {
		return nil, status.Error(codes.Unimplemented, "the emulator does not mint OAuth access tokens; use an OIDC token")
	}
	pb := proto.Clone(in).(*cloudtaskspb.Task)
	pb.View = cloudtaskspb.Task_FULL
	pb.DispatchCount, pb.ResponseCount = 0, 0
	pb.FirstAttempt, pb.LastAttempt = nil, nil
	hr = pb.GetHttpRequest()
	switch hr.HttpMethod {
	case cloudtaskspb.HttpMethod_HTTP_METHOD_UNSPECIFIED:
		hr.HttpMethod = cloudtaskspb.HttpMethod_POST
	case cloudtaskspb.HttpMethod_POST, cloudtaskspb.HttpMethod_PUT, cloudtaskspb.HttpMethod_PATCH:
	default:
		if len(hr.Body) > 0 {
			return nil, status.Errorf(codes.InvalidArgument, "a body is allowed only with POST, PUT or PATCH, not %s", hr.HttpMethod)
		}
	}
	if len(hr.Body) > 0 && !hasHeader(hr.Headers, "Content-Type") {
		if hr.Headers == nil {
			hr.Headers = map[string]string{}
		}
		hr.Headers["Content-Type"] = "application/octet-stream"
	}
	switch d := pb.GetDispatchDeadline(); {
	case d == nil:
		pb.DispatchDeadline = durationpb.New(defaultDispatchDeadline)
	case d.AsDuration() < minDispatchDeadline || d.AsDuration() > maxDispatchDeadline:
		return nil, status.Errorf(codes.InvalidArgument, "dispatch_deadline %s is outside [%s, %s]", d.AsDuration(), minDispatchDeadline, maxDispatchDeadline)
	}
	return pb, nil
}

func hasHeader(h map[string]string, key string) bool {
	for k := range h {
		if http.CanonicalHeaderKey(k) == key {
			return true
		}
	}
	return false
}

// GetTask returns a stored task.
func (s *server) GetTask(_ context.Context, req *cloudtaskspb.GetTaskRequest) (*cloudtaskspb.Task, error) {
	if _, _, err := splitTaskName(req.GetName()); err != nil {
		return nil, err
	}
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	t, ok := s.e.tasks[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "task %s not found", req.GetName())
	}
	return view(t.pb, req.GetResponseView()), nil
}

// ListTasks lists a queue's stored tasks in name order; the page token is
// the last name of the previous page.
func (s *server) ListTasks(_ context.Context, req *cloudtaskspb.ListTasksRequest) (*cloudtaskspb.ListTasksResponse, error) {
	if err := checkQueueName(req.GetParent()); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Errorf(codes.InvalidArgument, "page_size %d is negative", size)
	case size == 0 || size > maxPageSize:
		size = maxPageSize
	}
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	var names []string
	for name, t := range s.e.tasks {
		if t.queue == req.GetParent() && name > req.GetPageToken() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	resp := &cloudtaskspb.ListTasksResponse{}
	if len(names) > size {
		names = names[:size]
		resp.NextPageToken = names[size-1]
	}
	for _, name := range names {
		resp.Tasks = append(resp.Tasks, view(s.e.tasks[name].pb, req.GetResponseView()))
	}
	return resp, nil
}

// DeleteTask removes a stored task; its name stays taken. An attempt in
// flight finishes but is not retried.
func (s *server) DeleteTask(_ context.Context, req *cloudtaskspb.DeleteTaskRequest) (*emptypb.Empty, error) {
	if _, _, err := splitTaskName(req.GetName()); err != nil {
		return nil, err
	}
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tasks[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "task %s not found", req.GetName())
	}
	if t.index >= 0 {
		heap.Remove(&e.due, t.index)
	}
	t.deleted = true
	e.retire(t, time.Now())
	e.stats.Deleted++
	e.signalLocked()
	return &emptypb.Empty{}, nil
}

// GetQueue returns a queue; any well-formed queue name exists.
func (s *server) GetQueue(_ context.Context, req *cloudtaskspb.GetQueueRequest) (*cloudtaskspb.Queue, error) {
	if err := checkQueueName(req.GetName()); err != nil {
		return nil, err
	}
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	return proto.Clone(s.e.queueLocked(req.GetName())).(*cloudtaskspb.Queue), nil
}

// CreateQueue creates a queue with the emulator's rate and retry settings;
// the request's settings are ignored.
func (s *server) CreateQueue(_ context.Context, req *cloudtaskspb.CreateQueueRequest) (*cloudtaskspb.Queue, error) {
	name := req.GetQueue().GetName()
	if err := checkQueueName(name); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(name, req.GetParent()+"/queues/") {
		return nil, status.Errorf(codes.InvalidArgument, "queue %s is not under %s", name, req.GetParent())
	}
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	if _, ok := s.e.queues[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "queue %s already exists", name)
	}
	return proto.Clone(s.e.queueLocked(name)).(*cloudtaskspb.Queue), nil
}
