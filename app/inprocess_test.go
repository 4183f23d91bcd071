package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/notify"
	"github.com/pipelinehq/pipeline/pipeline"
)

type ctxKey struct{}

func TestInProcessServesTheRequestAsAServerWould(t *testing.T) {
	var got *http.Request
	var gotBody string
	tr := newInProcess(func() http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r
			b, _ := io.ReadAll(r.Body)
			gotBody = string(b)
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Header().Set("X-Late", "not sent") // after the status: not on the wire
			_, _ = io.WriteString(w, `{"message":"slow down"}`)
		})
	})
	tr.open(context.Background())
	ctx := context.WithValue(t.Context(), ctxKey{}, "v")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:8080/pipeline/steps/a?x=1", strings.NewReader(`{"run_id":"r"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := tr.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Status != "429 Too Many Requests" || string(body) != `{"message":"slow down"}` {
		t.Errorf("response %d %q %q", resp.StatusCode, resp.Status, body)
	}
	if resp.Header.Get("Retry-After") != "7" || resp.Header.Get("X-Late") != "" {
		t.Errorf("response headers %v: want Retry-After and not what was set after the status", resp.Header)
	}
	if got.Method != http.MethodPost || got.RequestURI != "/pipeline/steps/a?x=1" || got.URL.Path != "/pipeline/steps/a" || got.Host != "127.0.0.1:8080" {
		t.Errorf("request %s %q path %q host %q", got.Method, got.RequestURI, got.URL.Path, got.Host)
	}
	if got.Header.Get("Authorization") != "Bearer tok" || gotBody != `{"run_id":"r"}` || got.ProtoMajor != 1 {
		t.Errorf("request headers %v body %q proto %d", got.Header, gotBody, got.ProtoMajor)
	}
	if got.Context().Value(ctxKey{}) != "v" {
		t.Error("the request's context values did not reach the handler")
	}
	select {
	case <-tr.close():
	default:
		t.Error("a request answered is still counted in flight")
	}
}

func TestInProcessAnswers200WhenTheHandlerWritesNothing(t *testing.T) {
	tr := newInProcess(func() http.Handler { return http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}) })
	tr.open(context.Background())
	resp, err := tr.client().Post("http://x/healthz", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
}

// Serve interrupts in-process requests as it interrupts its connections':
// with the cause of the base context it cancels (pipeline.ErrShutdown).
func TestInProcessRequestsEndWithTheBaseCause(t *testing.T) {
	base, stop := context.WithCancelCause(context.Background())
	inHandler := make(chan struct{})
	tr := newInProcess(func() http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(inHandler)
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute): // a bound, so that a failure fails rather than hangs
			}
			if errors.Is(context.Cause(r.Context()), pipeline.ErrShutdown) {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
		})
	})
	tr.open(base)
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := tr.client().Post("http://x/pipeline/steps/a", "application/json", nil)
		if err != nil {
			t.Error(err)
		}
		answered <- resp
	}()
	<-inHandler
	stop(pipeline.ErrShutdown)
	if resp := <-answered; resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("response %v: want the handler to see ErrShutdown and answer 503", resp)
	}
}

// A delivery whose context ends (its deadline, the queue's shutdown) ends
// the handler's request context, as a dropped connection; the delivery
// gets the handler's answer when it returns, counted in flight until then
// (serve waits for it).
func TestInProcessDeliveryEndingEndsTheRequestAndWaitsForTheAnswer(t *testing.T) {
	inHandler, release := make(chan struct{}), make(chan struct{})
	tr := newInProcess(func() http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(inHandler)
			<-r.Context().Done()
			<-release
			if errors.Is(r.Context().Err(), context.Canceled) {
				w.WriteHeader(http.StatusAccepted)
			}
		})
	})
	tr.open(context.Background())
	ctx, cancel := context.WithCancel(t.Context())
	type answer struct {
		resp *http.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://x/pipeline/steps/a", nil)
		resp, err := tr.client().Do(req)
		answered <- answer{resp, err}
	}()
	<-inHandler
	cancel()
	idle := tr.close()
	select {
	case <-idle:
		t.Fatal("idle while a handler still runs")
	case a := <-answered:
		t.Fatalf("answered (%v, %v) before the handler returned", a.resp, a.err)
	default:
	}
	close(release)
	a := <-answered
	if a.err != nil || a.resp.StatusCode != http.StatusAccepted {
		t.Fatalf("answer (%v, %v): want the handler's 202, given once it saw its request end", a.resp, a.err)
	}
	<-idle
}

// Once serve is shutting down, a delivery gets a 503 without reaching the
// handler: the queue keeps the task, the attempt not counted.
func TestInProcessRefusesDeliveriesOnceClosed(t *testing.T) {
	var called atomic.Bool
	tr := newInProcess(func() http.Handler {
		return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) })
	})
	tr.open(context.Background())
	<-tr.close()
	resp, err := tr.client().Post("http://x/pipeline/steps/a", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || called.Load() {
		t.Errorf("status %d, handler called %v: want 503 and no call", resp.StatusCode, called.Load())
	}
}

func TestInProcessPanicIsNoAnswer(t *testing.T) {
	tr := newInProcess(func() http.Handler {
		return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	})
	tr.open(context.Background())
	_, err := tr.client().Post("http://x/pipeline/steps/a", "application/json", nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error %v, want the panic as a failed delivery", err)
	}
	<-tr.close()
}

// countingListener counts the connections it accepted.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// In local mode the queue delivers every step to the service's own handler
// in memory: a whole chain runs, auth on, with no connection to the
// listener but the start request's.
func TestLocalQueueDeliversInProcess(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "chain.yaml")
	if err := os.WriteFile(file, []byte("name: chain\ntime_zone: UTC\nsteps:\n  - name: a\n    kind: noop\n  - name: b\n    kind: noop\n    after: [a]\n  - name: c\n    kind: noop\n    after: [b]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{File: []string{file}, Backend: "local", Data: filepath.Join(dir, "data"), Auth: "on", LogLevel: "info", LeaseGrace: durationOf(30 * time.Second), stepSets: exampleSteps()}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := buildApp(ctx, cfg, newLogger(cfg, io.Discard), notify.Func(func(context.Context, pipeline.Event) error { return nil }))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var delivered atomic.Int64
	h := a.handler
	a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-CloudTasks-TaskName") != "" {
			delivered.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	ln, err := a.listen("127.0.0.1:0")
	if err != nil {
		cancel()
		a.close()
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	served := make(chan error, 1)
	go func() { served <- a.serve(ctx, cl, nil) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.close()
	}()
	res, err := a.start(ctx, pipeline.StartRequest{Pipeline: "chain", Key: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := a.orch.Ledger().GetRun(ctx, res.Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Terminal() {
			if r.Status != pipeline.RunSucceeded {
				t.Fatalf("run %s: %s", r.Status, r.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run still %s after a minute", r.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := delivered.Load(); n < 3 {
		t.Errorf("%d deliveries reached the handler, want 3", n)
	}
	// The one connection is the start request's (a.start posts over HTTP,
	// as the CLI does).
	if n := cl.accepted.Load(); n != 1 {
		t.Errorf("the listener accepted %d connections, want only the start request's: deliveries went over TCP", n)
	}
}

// Without a transport (the gcp backend) serve's drain does not wait for
// in-process requests.
func TestNoInProcessTransportIsIdle(t *testing.T) {
	var tr *inProcess
	tr.open(context.Background())
	select {
	case <-tr.close():
	default:
		t.Fatal("a nil transport is not idle")
	}
}
