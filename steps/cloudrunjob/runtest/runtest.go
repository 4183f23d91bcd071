// Package runtest is an in-process stand-in of the Cloud Run Admin API v2
// Jobs and Executions services (gRPC on 127.0.0.1) for tests of the
// cloudrun.job kind: it keeps jobs and executions in memory, completes an
// execution after a set number of GetExecution calls (or fails it with a
// condition message), records RunJob and CancelExecution calls, and
// answers a method with an injected error when told to.
package runtest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Method names for Fail.
const (
	RunJob          = "RunJob"
	GetExecution    = "GetExecution"
	ListExecutions  = "ListExecutions"
	CancelExecution = "CancelExecution"
)

// Outcome is how the executions of a job end.
type Outcome struct {
	// Gets is the number of GetExecution calls after which an execution
	// completes (0: at the first).
	Gets int
	// FailMessage, when set, makes the execution fail with this condition
	// message (one task failed) instead of succeeding.
	FailMessage string
}

// Server is the stand-in. Its methods are safe for concurrent use.
type Server struct {
	addr string

	mu       sync.Mutex
	jobs     map[string]Outcome // by full job name
	execs    map[string]*runpb.Execution
	gets     map[string]int
	order    []string // execution names, oldest first
	runs     []*runpb.RunJobRequest
	cancels  []string
	fail     map[string][]error
	runFails map[int]error // by RunJob call number (from 1): error after the execution was created
}

// Start serves the stand-in on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		addr: lis.Addr().String(), jobs: map[string]Outcome{}, execs: map[string]*runpb.Execution{},
		gets: map[string]int{}, fail: map[string][]error{}, runFails: map[int]error{},
	}
	srv := grpc.NewServer()
	runpb.RegisterJobsServer(srv, jobsServer{s: s})
	runpb.RegisterExecutionsServer(srv, execsServer{s: s})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return s
}

// ClientOptions point Run API clients at the stand-in, without credentials.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// AddJob creates the job projects/project/locations/region/jobs/job whose
// executions end as o says.
func (s *Server) AddJob(project, region, job string, o Outcome) string {
	name := fmt.Sprintf("projects/%s/locations/%s/jobs/%s", project, region, job)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[name] = o
	return name
}

// Fail makes the next calls of method answer errs, one each, in order.
func (s *Server) Fail(method string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method] = append(s.fail[method], errs...)
}

// LoseRunReply makes RunJob call n (from 1) create its execution and then
// answer err, as when the reply is lost.
func (s *Server) LoseRunReply(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runFails[n] = err
}

// Runs returns the RunJob requests received (the ones that created an
// execution), oldest first.
func (s *Server) Runs() []*runpb.RunJobRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*runpb.RunJobRequest, len(s.runs))
	for i, r := range s.runs {
		out[i] = proto.Clone(r).(*runpb.RunJobRequest)
	}
	return out
}

// Cancels returns the names of the executions CancelExecution was called on.
func (s *Server) Cancels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cancels...)
}

// Executions returns the executions, oldest first.
func (s *Server) Executions() []*runpb.Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*runpb.Execution, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, proto.Clone(s.execs[n]).(*runpb.Execution))
	}
	return out
}

// injected pops the next injected error of method. Call with mu held.
func (s *Server) injected(method string) error {
	errs := s.fail[method]
	if len(errs) == 0 {
		return nil
	}
	s.fail[method] = errs[1:]
	return errs[0]
}

type jobsServer struct {
	runpb.UnimplementedJobsServer
	s *Server
}

// RunJob creates an execution of the job with the overrides applied to its
// template and answers an operation whose metadata is the execution.
func (j jobsServer) RunJob(_ context.Context, req *runpb.RunJobRequest) (*longrunningpb.Operation, error) {
	s := j.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.injected(RunJob); err != nil {
		return nil, err
	}
	if _, ok := s.jobs[req.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "Resource '%s' was not found", req.GetName())
	}
	s.runs = append(s.runs, proto.Clone(req).(*runpb.RunJobRequest))
	n := len(s.runs)
	ov := req.GetOverrides()
	container := &runpb.Container{Name: "job", Image: "europe-docker.pkg.dev/acme/jobs/job:latest"}
	if co := ov.GetContainerOverrides(); len(co) > 0 {
		if co[0].GetName() != "" {
			container.Name = co[0].GetName()
		}
		container.Args = co[0].GetArgs()
		container.Env = co[0].GetEnv()
	}
	taskCount := ov.GetTaskCount()
	if taskCount == 0 {
		taskCount = 1
	}
	short := lastPart(req.GetName())
	ex := &runpb.Execution{
		Name:       fmt.Sprintf("%s/executions/%s-%05d", req.GetName(), short, n),
		Job:        short,
		CreateTime: timestamppb.New(time.Date(2026, 11, 23, 6, 0, n, 0, time.UTC)),
		TaskCount:  taskCount, Parallelism: taskCount, Reconciling: true,
		Template: &runpb.TaskTemplate{Containers: []*runpb.Container{container}, Timeout: ov.GetTimeout()},
		LogUri:   fmt.Sprintf("https://console.cloud.google.com/logs/viewer?execution=%s-%05d", short, n),
	}
	s.execs[ex.Name] = ex
	s.order = append(s.order, ex.Name)
	if err := s.runFails[n]; err != nil {
		return nil, err
	}
	meta, err := anypb.New(ex)
	if err != nil {
		return nil, err
	}
	return &longrunningpb.Operation{Name: fmt.Sprintf("%s/operations/op-%05d", req.GetName(), n), Metadata: meta}, nil
}

type execsServer struct {
	runpb.UnimplementedExecutionsServer
	s *Server
}

// GetExecution answers the execution, completing it at its job's count.
func (e execsServer) GetExecution(_ context.Context, req *runpb.GetExecutionRequest) (*runpb.Execution, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.injected(GetExecution); err != nil {
		return nil, err
	}
	ex, ok := s.execs[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Resource '%s' was not found", req.GetName())
	}
	s.gets[ex.Name]++
	jobName, _, _ := strings.Cut(ex.Name, "/executions/")
	o := s.jobs[jobName]
	if ex.CompletionTime == nil && s.gets[ex.Name] > o.Gets {
		complete(ex, o)
	}
	return proto.Clone(ex).(*runpb.Execution), nil
}

// complete ends ex as o says.
func complete(ex *runpb.Execution, o Outcome) {
	ex.Reconciling = false
	ex.CompletionTime = timestamppb.New(ex.CreateTime.AsTime().Add(3 * time.Hour))
	cond := &runpb.Condition{Type: "Completed", State: runpb.Condition_CONDITION_SUCCEEDED}
	ex.SucceededCount = ex.TaskCount
	if o.FailMessage != "" {
		ex.SucceededCount, ex.FailedCount = ex.TaskCount-1, 1
		cond.State, cond.Message = runpb.Condition_CONDITION_FAILED, o.FailMessage
		cond.Reasons = &runpb.Condition_ExecutionReason_{ExecutionReason: runpb.Condition_NON_ZERO_EXIT_CODE}
	}
	ex.Conditions = []*runpb.Condition{cond}
}

// ListExecutions answers the job's executions, newest first, by pages.
func (e execsServer) ListExecutions(_ context.Context, req *runpb.ListExecutionsRequest) (*runpb.ListExecutionsResponse, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.injected(ListExecutions); err != nil {
		return nil, err
	}
	if _, ok := s.jobs[req.GetParent()]; !ok {
		return nil, status.Errorf(codes.NotFound, "Resource '%s' was not found", req.GetParent())
	}
	var all []*runpb.Execution // newest first
	for i := len(s.order) - 1; i >= 0; i-- {
		if ex := s.execs[s.order[i]]; strings.HasPrefix(ex.Name, req.GetParent()+"/executions/") {
			all = append(all, ex)
		}
	}
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		if _, err := fmt.Sscanf(tok, "%d", &start); err != nil || start < 0 || start > len(all) {
			return nil, status.Errorf(codes.InvalidArgument, "bad page token %q", tok)
		}
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > 100 {
		size = 100
	}
	end := min(start+size, len(all))
	resp := &runpb.ListExecutionsResponse{}
	for _, ex := range all[start:end] {
		resp.Executions = append(resp.Executions, proto.Clone(ex).(*runpb.Execution))
	}
	if end < len(all) {
		resp.NextPageToken = fmt.Sprint(end)
	}
	return resp, nil
}

// CancelExecution records the call and cancels a running execution;
// cancelling a finished one is FailedPrecondition, as the API answers.
func (e execsServer) CancelExecution(_ context.Context, req *runpb.CancelExecutionRequest) (*longrunningpb.Operation, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels = append(s.cancels, req.GetName())
	if err := s.injected(CancelExecution); err != nil {
		return nil, err
	}
	ex, ok := s.execs[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Resource '%s' was not found", req.GetName())
	}
	if ex.CompletionTime != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "execution %s has already completed", ex.Name)
	}
	ex.Reconciling = false
	ex.CompletionTime = timestamppb.New(ex.CreateTime.AsTime().Add(time.Hour))
	ex.CancelledCount = ex.TaskCount
	ex.Conditions = []*runpb.Condition{{Type: "Completed", State: runpb.Condition_CONDITION_FAILED, Message: "The execution was cancelled.",
		Reasons: &runpb.Condition_ExecutionReason_{ExecutionReason: runpb.Condition_CANCELLED}}}
	meta, err := anypb.New(ex)
	if err != nil {
		return nil, err
	}
	return &longrunningpb.Operation{Name: ex.Name + "/operations/cancel", Metadata: meta}, nil
}

func lastPart(name string) string {
	return name[strings.LastIndex(name, "/")+1:]
}
