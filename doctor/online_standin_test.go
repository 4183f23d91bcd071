package doctor_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pipelinehq/pipeline/doctor"
)

// Resource names of the good deployment (see good()).
const (
	queueName     = "projects/acme/locations/europe-west1/queues/pipeline-prod"
	dailyJob      = "projects/acme/locations/europe-west1/jobs/pipeline-prod-daily"
	reconcileJob  = "projects/acme/locations/europe-west1/jobs/pipeline-prod-reconcile"
	serviceName   = "projects/acme/locations/europe-west1/services/pipeline-prod"
	invokerRole   = "roles/run.invoker"
	tasksMember   = "serviceAccount:" + tasksSA
	schedMember   = "serviceAccount:" + schedSA
	getQueue      = "GetQueue"
	getJob        = "GetJob"
	getIAMPolicy  = "GetIamPolicy"
	standInBearer = "Bearer stand-in-token"
)

// world is what the stand-in APIs answer: resources by name, and an error
// per method instead when set. It starts as the deploy scripts leave things.
type world struct {
	mu       sync.Mutex
	queues   map[string]*cloudtaskspb.Queue
	jobs     map[string]*schedulerpb.Job
	policies map[string]*iampb.Policy
	fail     map[string]error
	// auth is the authorization metadata of the last call.
	auth []string
}

func goodWorld() *world {
	job := func(path, schedule, tz string, deadline int64, retries int32) *schedulerpb.Job {
		return &schedulerpb.Job{
			State: schedulerpb.Job_ENABLED, Schedule: schedule, TimeZone: tz,
			AttemptDeadline: durationpb.New(time.Duration(deadline) * time.Second), RetryConfig: &schedulerpb.RetryConfig{RetryCount: retries},
			Target: &schedulerpb.Job_HttpTarget{HttpTarget: &schedulerpb.HttpTarget{
				Uri: url + path, HttpMethod: schedulerpb.HttpMethod_POST,
				AuthorizationHeader: &schedulerpb.HttpTarget_OidcToken{OidcToken: &schedulerpb.OidcToken{ServiceAccountEmail: schedSA, Audience: url}},
			}},
		}
	}
	daily := job("/pipeline/start", "0 6 * * *", "Europe/Paris", 45, 3)
	reconcile := job("/pipeline/reconcile", "*/5 * * * *", "Etc/UTC", 120, 0)
	return &world{
		queues: map[string]*cloudtaskspb.Queue{queueName: {
			Name: queueName, State: cloudtaskspb.Queue_RUNNING,
			RetryConfig: &cloudtaskspb.RetryConfig{MaxAttempts: 25, MinBackoff: durationpb.New(10 * time.Second), MaxBackoff: durationpb.New(300 * time.Second), MaxDoublings: 5},
		}},
		jobs: map[string]*schedulerpb.Job{dailyJob: daily, reconcileJob: reconcile},
		policies: map[string]*iampb.Policy{serviceName: {Bindings: []*iampb.Binding{
			{Role: "roles/run.developer", Members: []string{"user:dev@acme.example"}},
			{Role: invokerRole, Members: []string{tasksMember, schedMember}},
		}}},
		fail: map[string]error{},
	}
}

// edit changes the world under its lock.
func (w *world) edit(f func(w *world)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w)
}

// answer returns a copy of the named resource, the configured error, or NotFound.
func answer[T proto.Message](ctx context.Context, w *world, method string, resources map[string]T, name string) (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var zero T
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		w.auth = md.Get("authorization")
	}
	if err := w.fail[method]; err != nil {
		return zero, err
	}
	r, ok := resources[name]
	if !ok {
		return zero, status.Errorf(codes.NotFound, "%s not found", name)
	}
	return proto.Clone(r).(T), nil
}

type tasksStandIn struct {
	cloudtaskspb.UnimplementedCloudTasksServer
	w *world
}

func (s tasksStandIn) GetQueue(ctx context.Context, req *cloudtaskspb.GetQueueRequest) (*cloudtaskspb.Queue, error) {
	return answer(ctx, s.w, getQueue, s.w.queues, req.GetName())
}

type schedulerStandIn struct {
	schedulerpb.UnimplementedCloudSchedulerServer
	w *world
}

func (s schedulerStandIn) GetJob(ctx context.Context, req *schedulerpb.GetJobRequest) (*schedulerpb.Job, error) {
	return answer(ctx, s.w, getJob, s.w.jobs, req.GetName())
}

type runStandIn struct {
	runpb.UnimplementedServicesServer
	w *world
}

func (s runStandIn) GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	return answer(ctx, s.w, getIAMPolicy, s.w.policies, req.GetResource())
}

// serve starts the three stand-in APIs on one gRPC server and returns its address.
func serve(t *testing.T, w *world, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	cloudtaskspb.RegisterCloudTasksServer(srv, tasksStandIn{w: w})
	schedulerpb.RegisterCloudSchedulerServer(srv, schedulerStandIn{w: w})
	runpb.RegisterServicesServer(srv, runStandIn{w: w})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// standIn serves w over plain gRPC and returns the real clients talking to it.
func standIn(t *testing.T, w *world) *doctor.GCP {
	t.Helper()
	g, err := doctor.NewGCP(context.Background(),
		option.WithEndpoint(serve(t, w)), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// tlsStandIn serves w over TLS (httptest's certificate for 127.0.0.1) and
// returns the address and the client options that trust it, so that real
// credentials can be sent.
func tlsStandIn(t *testing.T, w *world) []option.ClientOption {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	cert, pool := hs.TLS.Certificates[0], x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	hs.Close()
	addr := serve(t, w, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))),
	}
}
