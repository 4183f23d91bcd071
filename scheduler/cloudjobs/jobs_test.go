package cloudjobs_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	scheduler "cloud.google.com/go/scheduler/apiv1"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/scheduler/cloudjobs"
	"github.com/pipelinehq/pipeline/steps"
)

const dailyJob = "projects/acme/locations/europe-west1/jobs/pipeline-prod-daily"

// standIn is Cloud Scheduler's PauseJob and ResumeJob over real gRPC.
type standIn struct {
	schedulerpb.UnimplementedCloudSchedulerServer
	mu    sync.Mutex
	jobs  map[string]schedulerpb.Job_State
	fail  error
	calls int
}

func (s *standIn) set(name string, st schedulerpb.Job_State) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		return nil, s.fail
	}
	if _, ok := s.jobs[name]; !ok {
		return nil, status.Errorf(codes.NotFound, "job %s not found", name)
	}
	s.jobs[name] = st
	return &schedulerpb.Job{Name: name, State: st}, nil
}

func (s *standIn) PauseJob(_ context.Context, r *schedulerpb.PauseJobRequest) (*schedulerpb.Job, error) {
	return s.set(r.GetName(), schedulerpb.Job_PAUSED)
}

func (s *standIn) ResumeJob(_ context.Context, r *schedulerpb.ResumeJobRequest) (*schedulerpb.Job, error) {
	return s.set(r.GetName(), schedulerpb.Job_ENABLED)
}

func (s *standIn) state(name string) schedulerpb.Job_State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[name]
}

// serve starts the stand-in on 127.0.0.1 and returns jobs that reach it
// through the real Cloud Scheduler client.
func serve(t *testing.T) (*standIn, *cloudjobs.Jobs) {
	t.Helper()
	s := &standIn{jobs: map[string]schedulerpb.Job_State{dailyJob: schedulerpb.Job_ENABLED}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	schedulerpb.RegisterCloudSchedulerServer(srv, s)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client, err := scheduler.NewCloudSchedulerClient(context.Background(), option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	j, err := cloudjobs.NewWithAPI("acme", "europe-west1", "pipeline-prod", client)
	if err != nil {
		t.Fatal(err)
	}
	return s, j
}

func TestPauseAndResumeTheJob(t *testing.T) {
	s, j := serve(t)
	ctx := context.Background()
	for range 2 { // idempotent
		if err := j.PauseJob(ctx, "daily"); err != nil {
			t.Fatal(err)
		}
		if st := s.state(dailyJob); st != schedulerpb.Job_PAUSED {
			t.Fatalf("job is %s after PauseJob", st)
		}
	}
	if err := j.ResumeJob(ctx, "daily"); err != nil {
		t.Fatal(err)
	}
	if st := s.state(dailyJob); st != schedulerpb.Job_ENABLED {
		t.Fatalf("job is %s after ResumeJob", st)
	}
	err := j.PauseJob(ctx, "weekly")
	if err == nil || !strings.Contains(err.Error(), "pipeline-prod-weekly") || status.Code(err) != codes.NotFound && !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("pausing a missing job: %v", err)
	}
}

func TestNewNamesWhatIsMissing(t *testing.T) {
	_, err := cloudjobs.New("", "", "")
	for _, want := range []string{"GOOGLE_CLOUD_PROJECT", "CLOUD_RUN_REGION", "K_SERVICE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New with nothing: %v; want it to name %s", err, want)
		}
	}
}

// The orchestrator records the pause in the ledger, then pauses the job; a
// failed job call says so and leaves the ledger's pause in place, and running
// the command again pauses the job.
func TestOrchestratorPausesTheJob(t *testing.T) {
	s, j := serve(t)
	ctx := context.Background()
	reg := steps.NewRegistry()
	reg.Register("go", func(map[string]any) (steps.Step, error) { return steps.StepFunc(nil), nil })
	defs, err := pipeline.Parse("p.yaml", []byte("name: daily\nschedule: \"0 6 * * *\"\nsteps:\n  - {name: a, kind: go}\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	led, err := boltledger.Open(t.TempDir() + "/l.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	o, err := pipeline.New(pipeline.Config{Catalog: pipeline.NewCatalog(defs...), Ledger: led, Queue: nopQueue{}, Jobs: j,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.fail = status.Error(codes.PermissionDenied, "caller lacks cloudscheduler.jobs.pause")
	_, err = o.Pause(ctx, pipeline.PauseRequest{Pipeline: "daily", Reason: "migration", By: "ops@acme.com"})
	if err == nil || !strings.Contains(err.Error(), "recorded as paused=true") || !strings.Contains(err.Error(), "run the command again") {
		t.Fatalf("pause with the job call failing: %v", err)
	}
	if st, _ := o.PauseState(ctx, "daily"); !st.Paused || st.By != "ops@acme.com" {
		t.Fatalf("ledger pause = %+v", st)
	}
	s.fail = nil
	if _, err := o.Pause(ctx, pipeline.PauseRequest{Pipeline: "daily", By: "ops@acme.com"}); err != nil {
		t.Fatal(err)
	}
	if st := s.state(dailyJob); st != schedulerpb.Job_PAUSED {
		t.Fatalf("job %s after the second pause", st)
	}
	if _, err := o.Unpause(ctx, pipeline.PauseRequest{Pipeline: "daily", By: "ops@acme.com"}); err != nil {
		t.Fatal(err)
	}
	if st := s.state(dailyJob); st != schedulerpb.Job_ENABLED {
		t.Fatalf("job %s after unpause", st)
	}
}

type nopQueue struct{}

func (nopQueue) Enqueue(context.Context, pipeline.Task) error { return nil }
