package cloudtasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/cloudtasks"
	"github.com/pipelinehq/pipeline/queue/cloudtasks/emulator"
)

// delivery is one request the test service received.
type delivery struct {
	method, path string
	header       http.Header
	body         []byte
	at           time.Time
}

// rig is an emulator, a service receiving its deliveries, and a Queue
// talking gRPC to the emulator.
type rig struct {
	emu   *emulator.Emulator
	srv   *httptest.Server
	queue *cloudtasks.Queue
	cfg   cloudtasks.Config
	got   chan delivery
}

func newRig(t *testing.T, mutate func(*cloudtasks.Config)) *rig {
	t.Helper()
	ctx := t.Context()
	emu, err := emulator.Start(ctx, emulator.Config{})
	if err != nil {
		t.Fatalf("emulator.Start: %v", err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	r := &rig{emu: emu, got: make(chan delivery, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.got <- delivery{method: req.Method, path: req.URL.Path, header: req.Header.Clone(), body: body, at: time.Now()}
	}))
	t.Cleanup(r.srv.Close)
	r.cfg = cloudtasks.Config{
		Project: "test-project", Location: "europe-west1", Queue: "steps",
		ServiceURL:     r.srv.URL,
		ServiceAccount: "tasks@test-project.iam.gserviceaccount.com",
		EmulatorHost:   emu.Addr(),
	}
	if mutate != nil {
		mutate(&r.cfg)
	}
	r.queue, err = cloudtasks.New(ctx, r.cfg)
	if err != nil {
		t.Fatalf("cloudtasks.New: %v", err)
	}
	t.Cleanup(func() { _ = r.queue.Close() })
	return r
}

func (r *rig) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-t.Context().Done():
		t.Fatal("no delivery before the test ended")
	}
	return delivery{}
}

func stepTask(step string) pipeline.Task {
	p := pipeline.TaskPayload{RunID: "daily@2026-03-01", Step: step, Generation: 0, Date: "2026-03-01"}
	return pipeline.Task{Name: pipeline.TaskName(p.RunID, step, 0), Payload: p, Deadline: time.Minute}
}

func TestEnqueueDeliversWithHeadersBodyAndVerifiableToken(t *testing.T) {
	r := newRig(t, func(c *cloudtasks.Config) { c.Audience = "https://pipeline.example.com/" })
	task := stepTask("extract")
	if err := r.queue.Enqueue(t.Context(), task); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	d := r.next(t)

	if d.method != http.MethodPost || d.path != "/pipeline/steps/extract" {
		t.Errorf("request = %s %s, want POST /pipeline/steps/extract", d.method, d.path)
	}
	var body pipeline.TaskPayload
	if err := json.Unmarshal(d.body, &body); err != nil {
		t.Fatalf("body %q: %v", d.body, err)
	}
	if body.RunID != task.Payload.RunID || body.Step != task.Payload.Step || body.Date != task.Payload.Date {
		t.Errorf("body = %+v, want %+v", body, task.Payload)
	}
	for k, want := range map[string]string{
		"Content-Type":                    "application/json",
		"X-CloudTasks-QueueName":          "steps",
		"X-CloudTasks-TaskName":           task.Name,
		"X-CloudTasks-TaskRetryCount":     "0",
		"X-CloudTasks-TaskExecutionCount": "0",
		"User-Agent":                      "Google-Cloud-Tasks",
	} {
		if got := d.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if _, err := strconv.ParseFloat(d.header.Get("X-CloudTasks-TaskETA"), 64); err != nil {
		t.Errorf("X-CloudTasks-TaskETA %q: %v", d.header.Get("X-CloudTasks-TaskETA"), err)
	}

	// The token verifies through discovery at the emulator's issuer.
	provider, err := oidc.NewProvider(t.Context(), r.emu.IssuerURL())
	if err != nil {
		t.Fatalf("oidc.NewProvider(%s): %v", r.emu.IssuerURL(), err)
	}
	raw, ok := cutBearer(d.header.Get("Authorization"))
	if !ok {
		t.Fatalf("Authorization = %q, want a bearer token", d.header.Get("Authorization"))
	}
	tok, err := provider.Verifier(&oidc.Config{ClientID: "https://pipeline.example.com/"}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := tok.Claims(&claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if tok.Issuer != r.emu.IssuerURL() || claims.Email != r.cfg.ServiceAccount || !claims.EmailVerified {
		t.Errorf("iss %q email %q verified %v, want %q %q true", tok.Issuer, claims.Email, claims.EmailVerified, r.emu.IssuerURL(), r.cfg.ServiceAccount)
	}
	// A verifier for another audience refuses it.
	if _, err := provider.Verifier(&oidc.Config{ClientID: r.srv.URL}).Verify(t.Context(), raw); err == nil {
		t.Error("token verified for the wrong audience")
	}
}

func TestAudienceDefaultsToServiceURL(t *testing.T) {
	r := newRig(t, nil)
	if err := r.queue.Enqueue(t.Context(), stepTask("load")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	d := r.next(t)
	provider, err := oidc.NewProvider(t.Context(), r.emu.IssuerURL())
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	raw, _ := cutBearer(d.header.Get("Authorization"))
	if _, err := provider.Verifier(&oidc.Config{ClientID: r.srv.URL}).Verify(t.Context(), raw); err != nil {
		t.Fatalf("token does not verify for audience %s: %v", r.srv.URL, err)
	}
}

func cutBearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || h[:len(p)] != p {
		return "", false
	}
	return h[len(p):], true
}

func TestEnqueueIsIdempotent(t *testing.T) {
	r := newRig(t, nil)
	task := stepTask("transform")
	task.Delay = time.Hour // stays stored, so the second create meets a live task
	for i := range 2 {
		if err := r.queue.Enqueue(t.Context(), task); err != nil {
			t.Fatalf("Enqueue #%d: %v", i+1, err)
		}
	}
	if s := r.emu.Stats(); s.Created != 1 || s.AlreadyExists != 1 || s.Pending != 1 {
		t.Fatalf("stats = %+v, want 1 created, 1 already-exists, 1 pending", s)
	}

	// A name stays taken after its task ran.
	done := stepTask("report")
	if err := r.queue.Enqueue(t.Context(), done); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	r.next(t)
	waitDelivered(t, r.emu, 1)
	if err := r.queue.Enqueue(t.Context(), done); err != nil {
		t.Fatalf("Enqueue after delivery: %v", err)
	}
	if s := r.emu.Stats(); s.Created != 2 || s.AlreadyExists != 2 {
		t.Errorf("stats = %+v, want 2 created, 2 already-exists", s)
	}
	select {
	case d := <-r.got:
		t.Errorf("duplicate delivery of %s", d.header.Get("X-CloudTasks-TaskName"))
	default:
	}
}

// waitDelivered waits until n tasks have succeeded.
func waitDelivered(t *testing.T, e *emulator.Emulator, n int64) {
	t.Helper()
	if err := e.WaitFor(t.Context(), func(s emulator.Stats) bool { return s.Succeeded >= n }); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
}

func TestEnqueueRetriesTransientFailures(t *testing.T) {
	r := newRig(t, nil)
	// The first create lands but its answer is lost; the retry meets
	// AlreadyExists, which is success.
	r.emu.InjectCreateFaults(emulator.Fault{Code: codes.Unavailable, AfterCommit: true})
	if err := r.queue.Enqueue(t.Context(), stepTask("a")); err != nil {
		t.Fatalf("Enqueue after a lost answer: %v", err)
	}
	if s := r.emu.Stats(); s.Created != 1 || s.AlreadyExists != 1 || s.Faulted != 1 {
		t.Errorf("stats = %+v, want 1 created, 1 already-exists, 1 faulted", s)
	}

	// Two refusals, then the create goes through.
	r.emu.InjectCreateFaults(emulator.Fault{Code: codes.ResourceExhausted}, emulator.Fault{Code: codes.DeadlineExceeded})
	if err := r.queue.Enqueue(t.Context(), stepTask("b")); err != nil {
		t.Fatalf("Enqueue after two transient refusals: %v", err)
	}
	if s := r.emu.Stats(); s.Created != 2 || s.Faulted != 3 {
		t.Errorf("stats = %+v, want 2 created, 3 faulted", s)
	}

	// Retries are bounded: five attempts, then the error. The sixth fault is
	// left for the next call, which then succeeds.
	faults := make([]emulator.Fault, 6)
	for i := range faults {
		faults[i].Code = codes.Unavailable
	}
	r.emu.InjectCreateFaults(faults...)
	err := r.queue.Enqueue(t.Context(), stepTask("c"))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Enqueue error = %v, want Unavailable", err)
	}
	if s := r.emu.Stats(); s.Faulted != 3+5 {
		t.Errorf("faulted = %d, want %d (5 attempts)", s.Faulted, 3+5)
	}
	if err := r.queue.Enqueue(t.Context(), stepTask("c")); err != nil {
		t.Fatalf("Enqueue after the faults ran out: %v", err)
	}

	// Permanent errors are not retried.
	r.emu.InjectCreateFaults(emulator.Fault{Code: codes.InvalidArgument}, emulator.Fault{Code: codes.PermissionDenied})
	err = r.queue.Enqueue(t.Context(), stepTask("d"))
	if !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("InvalidArgument: error = %v, want pipeline.ErrInvalid", err)
	}
	err = r.queue.Enqueue(t.Context(), stepTask("e"))
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("PermissionDenied: error = %v", err)
	}
	if s := r.emu.Stats(); s.Faulted != 3+6+2 {
		t.Errorf("faulted = %d, want %d", s.Faulted, 3+6+2)
	}
}

func TestEnqueueHonoursDelay(t *testing.T) {
	r := newRig(t, nil)
	task := stepTask("later")
	task.Delay = 300 * time.Millisecond
	earliest := time.Now().Add(task.Delay)
	if err := r.queue.Enqueue(t.Context(), task); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	d := r.next(t)
	if d.at.Before(earliest) {
		t.Errorf("delivered at %s, before the schedule time %s", d.at.Format(time.StampMicro), earliest.Format(time.StampMicro))
	}
	eta, err := strconv.ParseFloat(d.header.Get("X-CloudTasks-TaskETA"), 64)
	if err != nil {
		t.Fatalf("X-CloudTasks-TaskETA: %v", err)
	}
	if etaTime := time.UnixMicro(int64(eta * 1e6)); etaTime.Before(earliest.Add(-time.Millisecond)) {
		t.Errorf("ETA %s before %s", etaTime, earliest)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	_, err := cloudtasks.New(context.Background(), cloudtasks.Config{Project: "test-project"})
	if !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("New error = %v, want pipeline.ErrInvalid", err)
	}
}
