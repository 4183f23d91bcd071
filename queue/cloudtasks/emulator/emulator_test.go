package emulator_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ctapi "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"github.com/coreos/go-oidc/v3/oidc"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pipelinehq/pipeline/queue/cloudtasks/emulator"
)

const queueName = "projects/test-project/locations/us-central1/queues/q1"

// start runs an emulator and returns it with a Cloud Tasks client dialled to it.
func start(t *testing.T, cfg emulator.Config) (*emulator.Emulator, *ctapi.Client) {
	t.Helper()
	e, err := emulator.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	c, err := ctapi.NewClient(t.Context(),
		option.WithEndpoint(e.Addr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return e, c
}

// hit is one request the target received.
type hit struct {
	header http.Header
	body   string
	at     time.Time
}

// target is an HTTP service that answers with reply and reports each request.
func target(t *testing.T, reply func(n int, w http.ResponseWriter, r *http.Request)) (*httptest.Server, <-chan hit) {
	t.Helper()
	hits := make(chan hit, 1000)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hits <- hit{header: r.Header.Clone(), body: string(body), at: time.Now()}
		reply(int(n.Add(1)), w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

func ok(int, http.ResponseWriter, *http.Request) {}

func httpTask(name, url string) *cloudtaskspb.Task {
	t := &cloudtaskspb.Task{
		MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
			Url:        url,
			HttpMethod: cloudtaskspb.HttpMethod_POST,
			Body:       []byte(`{"hello":"world"}`),
		}},
	}
	if name != "" {
		t.Name = queueName + "/tasks/" + name
	}
	return t
}

func create(t *testing.T, c *ctapi.Client, task *cloudtaskspb.Task) *cloudtaskspb.Task {
	t.Helper()
	got, err := c.CreateTask(t.Context(), &cloudtaskspb.CreateTaskRequest{Parent: queueName, Task: task})
	if err != nil {
		t.Fatalf("CreateTask %s: %v", task.GetName(), err)
	}
	return got
}

func waitIdle(t *testing.T, e *emulator.Emulator) {
	t.Helper()
	if err := e.WaitIdle(t.Context()); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
}

func TestRetriesUntilSuccess(t *testing.T) {
	e, c := start(t, emulator.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	srv, hits := target(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	create(t, c, httpTask("retry-me", srv.URL+"/x"))
	waitIdle(t, e)

	for i := range 3 {
		h := <-hits
		if got := h.header.Get("X-CloudTasks-TaskRetryCount"); got != strconv.Itoa(i) {
			t.Errorf("attempt %d: retry count %q, want %d", i+1, got, i)
		}
		if got := h.header.Get("X-CloudTasks-TaskExecutionCount"); got != strconv.Itoa(i) {
			t.Errorf("attempt %d: execution count %q, want %d", i+1, got, i)
		}
		wantPrev := ""
		if i > 0 {
			wantPrev = "500"
		}
		if got := h.header.Get("X-CloudTasks-TaskPreviousResponse"); got != wantPrev {
			t.Errorf("attempt %d: previous response %q, want %q", i+1, got, wantPrev)
		}
		if h.body != `{"hello":"world"}` || h.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("attempt %d: body %q content type %q", i+1, h.body, h.header.Get("Content-Type"))
		}
	}
	s := e.Stats()
	if s.Dispatches != 3 || s.Succeeded != 1 || s.ByStatus[500] != 2 || s.ByStatus[200] != 1 || s.Pending != 0 {
		t.Errorf("stats = %+v, want 3 dispatches (2x500, 1x200), 1 succeeded, none pending", s)
	}
}

func TestDropsTaskAfterMaxAttempts(t *testing.T) {
	e, c := start(t, emulator.Config{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	srv, _ := target(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	create(t, c, httpTask("doomed", srv.URL))
	waitIdle(t, e)
	if s := e.Stats(); s.Dispatches != 3 || s.Exhausted != 1 || s.ByStatus[502] != 3 {
		t.Errorf("stats = %+v, want 3 dispatches of 502 and 1 exhausted", s)
	}
	// A dropped task's name stays taken.
	_, err := c.CreateTask(t.Context(), &cloudtaskspb.CreateTaskRequest{Parent: queueName, Task: httpTask("doomed", srv.URL)})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("re-create after drop: %v, want AlreadyExists", err)
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	e, c := start(t, emulator.Config{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	var answered atomic.Int64 // UnixNano of the end of the 429 answer
	srv, hits := target(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			answered.Store(time.Now().UnixNano())
		}
	})
	create(t, c, httpTask("slow-down", srv.URL))
	<-hits
	second := <-hits
	if gap := second.at.Sub(time.Unix(0, answered.Load())); gap < time.Second {
		t.Errorf("second attempt %s after a 429 with Retry-After: 1", gap)
	}
	waitIdle(t, e)
	if s := e.Stats(); s.ByStatus[429] != 1 || s.Succeeded != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestScheduleTimeAndToken(t *testing.T) {
	e, c := start(t, emulator.Config{})
	srv, hits := target(t, ok)
	task := httpTask("", srv.URL+"/pipeline/steps/a")
	when := time.Now().Add(200 * time.Millisecond)
	task.ScheduleTime = timestamppb.New(when)
	task.GetHttpRequest().AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{
		OidcToken: &cloudtaskspb.OidcToken{ServiceAccountEmail: "sa@test-project.iam.gserviceaccount.com"},
	}
	got := create(t, c, task)
	if !strings.HasPrefix(got.GetName(), queueName+"/tasks/") || len(got.GetName()) == len(queueName+"/tasks/") {
		t.Errorf("generated name %q", got.GetName())
	}
	if got.GetDispatchDeadline().AsDuration() != 10*time.Minute {
		t.Errorf("default dispatch deadline %s, want 10m", got.GetDispatchDeadline().AsDuration())
	}
	h := <-hits
	if h.at.Before(when) {
		t.Errorf("delivered at %s, before the schedule time %s", h.at.Format(time.StampMicro), when.Format(time.StampMicro))
	}
	if short := h.header.Get("X-CloudTasks-TaskName"); !strings.HasSuffix(got.GetName(), "/tasks/"+short) {
		t.Errorf("X-CloudTasks-TaskName %q is not the short name of %s", short, got.GetName())
	}
	if h.header.Get("X-CloudTasks-QueueName") != "q1" {
		t.Errorf("X-CloudTasks-QueueName %q", h.header.Get("X-CloudTasks-QueueName"))
	}

	// Without an audience the token is for the task's URL.
	provider, err := oidc.NewProvider(t.Context(), e.IssuerURL())
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	raw := strings.TrimPrefix(h.header.Get("Authorization"), "Bearer ")
	tok, err := provider.Verifier(&oidc.Config{ClientID: srv.URL + "/pipeline/steps/a"}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var claims struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
	}
	if err := tok.Claims(&claims); err != nil || claims.Email != "sa@test-project.iam.gserviceaccount.com" || !claims.Verified {
		t.Errorf("claims %+v, %v", claims, err)
	}
	if d := time.Until(tok.Expiry); d < 50*time.Minute || d > time.Hour {
		t.Errorf("token expires in %s, want about 1h", d)
	}
}

func TestGetListDeleteTask(t *testing.T) {
	e, c := start(t, emulator.Config{})
	ctx := t.Context()
	later := timestamppb.New(time.Now().Add(time.Hour))
	for _, name := range []string{"c", "a", "b"} {
		task := httpTask(name, "http://127.0.0.1:1/")
		task.ScheduleTime = later
		create(t, c, task)
	}

	basic, err := c.GetTask(ctx, &cloudtaskspb.GetTaskRequest{Name: queueName + "/tasks/a"})
	if err != nil {
		t.Fatalf("GetTask: %v", err)
	}
	if basic.GetView() != cloudtaskspb.Task_BASIC || basic.GetHttpRequest().GetBody() != nil || !basic.GetScheduleTime().AsTime().Equal(later.AsTime()) {
		t.Errorf("basic view = %v", basic)
	}
	full, err := c.GetTask(ctx, &cloudtaskspb.GetTaskRequest{Name: queueName + "/tasks/a", ResponseView: cloudtaskspb.Task_FULL})
	if err != nil || string(full.GetHttpRequest().GetBody()) != `{"hello":"world"}` {
		t.Errorf("full view = %v, %v", full, err)
	}

	var names []string
	it := c.ListTasks(ctx, &cloudtaskspb.ListTasksRequest{Parent: queueName, PageSize: 2})
	for {
		task, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatalf("ListTasks: %v", err)
		}
		names = append(names, task.GetName()[len(queueName+"/tasks/"):])
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("ListTasks = %v, want a,b,c", names)
	}

	if err := c.DeleteTask(ctx, &cloudtaskspb.DeleteTaskRequest{Name: queueName + "/tasks/b"}); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	if _, err := c.GetTask(ctx, &cloudtaskspb.GetTaskRequest{Name: queueName + "/tasks/b"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetTask after delete: %v, want NotFound", err)
	}
	if err := c.DeleteTask(ctx, &cloudtaskspb.DeleteTaskRequest{Name: queueName + "/tasks/b"}); status.Code(err) != codes.NotFound {
		t.Errorf("second DeleteTask: %v, want NotFound", err)
	}
	if _, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: queueName, Task: httpTask("b", "http://127.0.0.1:1/")}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("re-create deleted name: %v, want AlreadyExists", err)
	}
	if s := e.Stats(); s.Created != 3 || s.Deleted != 1 || s.AlreadyExists != 1 || s.Pending != 2 || s.Dispatches != 0 {
		t.Errorf("stats = %+v", s)
	}
	if tasks := e.Tasks(); len(tasks) != 2 || tasks[0].GetName() != queueName+"/tasks/a" {
		t.Errorf("Tasks() = %v", tasks)
	}

	q, err := c.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: queueName})
	if err != nil || q.GetState() != cloudtaskspb.Queue_RUNNING || q.GetRetryConfig().GetMaxAttempts() != emulator.DefaultMaxAttempts {
		t.Errorf("GetQueue = %v, %v", q, err)
	}
	_, err = c.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: "projects/test-project/locations/us-central1", Queue: &cloudtaskspb.Queue{Name: queueName}})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("CreateQueue of a used queue: %v, want AlreadyExists", err)
	}
	q2 := "projects/test-project/locations/us-central1/queues/q2"
	if q, err := c.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: "projects/test-project/locations/us-central1", Queue: &cloudtaskspb.Queue{Name: q2}}); err != nil || q.GetName() != q2 {
		t.Errorf("CreateQueue: %v, %v", q, err)
	}
}

func TestCreateTaskRefusesBadRequests(t *testing.T) {
	e, c := start(t, emulator.Config{})
	big := httpTask("big", "http://127.0.0.1:1/")
	big.GetHttpRequest().Body = make([]byte, 100*1024)
	withDeadline := func(d time.Duration) *cloudtaskspb.Task {
		task := httpTask("dl", "http://127.0.0.1:1/")
		task.DispatchDeadline = durationpb.New(d)
		return task
	}
	getWithBody := httpTask("get", "http://127.0.0.1:1/")
	getWithBody.GetHttpRequest().HttpMethod = cloudtaskspb.HttpMethod_GET
	otherQueue := httpTask("", "http://127.0.0.1:1/")
	otherQueue.Name = "projects/test-project/locations/us-central1/queues/other/tasks/x"
	badName := httpTask("", "http://127.0.0.1:1/")
	badName.Name = queueName + "/tasks/has.dot"
	tests := []struct {
		name   string
		parent string
		task   *cloudtaskspb.Task
		want   codes.Code
	}{
		{"bad parent", "projects/p/queues/q", httpTask("", "http://127.0.0.1:1/"), codes.InvalidArgument},
		{"no task", queueName, nil, codes.InvalidArgument},
		{"bad task id", queueName, badName, codes.InvalidArgument},
		{"task in another queue", queueName, otherQueue, codes.InvalidArgument},
		{"no http request", queueName, &cloudtaskspb.Task{}, codes.InvalidArgument},
		{"relative url", queueName, httpTask("rel", "/pipeline/steps/a"), codes.InvalidArgument},
		{"deadline too short", queueName, withDeadline(14 * time.Second), codes.InvalidArgument},
		{"deadline too long", queueName, withDeadline(31 * time.Minute), codes.InvalidArgument},
		{"over 100 KB", queueName, big, codes.InvalidArgument},
		{"GET with body", queueName, getWithBody, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateTask(t.Context(), &cloudtaskspb.CreateTaskRequest{Parent: tt.parent, Task: tt.task})
			if status.Code(err) != tt.want {
				t.Errorf("CreateTask: %v, want %s", err, tt.want)
			}
		})
	}
	if s := e.Stats(); s.Created != 0 {
		t.Errorf("created %d tasks from bad requests", s.Created)
	}
	create(t, c, withDeadline(15*time.Second))
}

func TestReuseWindowNegativeFreesNames(t *testing.T) {
	e, c := start(t, emulator.Config{ReuseWindow: -1})
	srv, hits := target(t, ok)
	for range 2 {
		create(t, c, httpTask("again", srv.URL))
		<-hits
		waitIdle(t, e)
	}
	if s := e.Stats(); s.Created != 2 || s.Succeeded != 2 || s.AlreadyExists != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const limit, tasks = 2, 8
	e, c := start(t, emulator.Config{MaxConcurrent: limit})
	var cur, peak atomic.Int64
	// The first attempts hold their slots until `limit` are in flight at once
	// (a barrier, not a sleep): the limit is then shown reached, and any
	// attempt beyond it would arrive while they are held.
	full := make(chan struct{})
	var fullOnce sync.Once
	hold, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, _ := target(t, func(int, http.ResponseWriter, *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n >= limit {
			fullOnce.Do(func() { close(full) })
		}
		select {
		case <-full:
		case <-hold.Done():
		}
		cur.Add(-1)
	})
	for i := range tasks {
		create(t, c, httpTask("t"+strconv.Itoa(i), srv.URL))
	}
	waitIdle(t, e)
	if p := peak.Load(); p != limit {
		t.Errorf("peak concurrency %d, want exactly the limit %d", p, limit)
	}
	if s := e.Stats(); s.Succeeded != tasks {
		t.Errorf("succeeded %d, want %d", s.Succeeded, tasks)
	}
}

func TestCloseCancelsAttemptsInFlight(t *testing.T) {
	e, c := start(t, emulator.Config{})
	var once sync.Once
	entered := make(chan struct{})
	srv, _ := target(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		<-r.Context().Done()
	})
	create(t, c, httpTask("stuck", srv.URL))
	<-entered
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.WaitIdle(context.Background()); err == nil {
		t.Error("WaitIdle on a closed emulator with a stored task returned nil")
	}
}

func TestStartStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	e, err := emulator.Start(ctx, emulator.Config{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	cancel()
	// Close after the context's own close is a no-op that waits for it.
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := http.Get(e.IssuerURL() + "/jwks"); err == nil {
		t.Error("issuer still serving after the context ended")
	}
}

func TestDispatchDeadlineCutsSlowTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 15 s minimum dispatch deadline")
	}
	t.Parallel()
	e, c := start(t, emulator.Config{MaxAttempts: 1})
	// Measured from before the task exists, so the bound holds however late
	// a loaded machine lets the handler start: the deadline runs from the
	// dispatch, which comes after the creation.
	cut := make(chan time.Time, 1)
	srv, _ := target(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		cut <- time.Now()
	})
	task := httpTask("slow", srv.URL)
	task.DispatchDeadline = durationpb.New(15 * time.Second)
	created := time.Now()
	create(t, c, task)
	if d := (<-cut).Sub(created); d < 15*time.Second {
		t.Errorf("attempt cut %s after the task was created, before its 15 s deadline", d)
	}
	waitIdle(t, e)
	if s := e.Stats(); s.ByStatus[0] != 1 || s.Exhausted != 1 {
		t.Errorf("stats = %+v, want one attempt without response, exhausted", s)
	}
}
