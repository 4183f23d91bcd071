package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// inProcess is the local queue's transport: the queue always delivers to
// this process's own handler, so a delivery is handed to that handler as a
// server request, in memory, instead of crossing loopback TCP (an HTTP
// client's and server's connection, header and buffer work per step: about
// a fifth of a step's CPU, see docs/performance.md). What the handler sees
// is what a server request carries: method, URL, headers (the bearer token
// it verifies, X-CloudTasks-*), body, and a context that serve interrupts
// with pipeline.ErrShutdown. The delivery's end (its deadline, or the
// queue's shutdown cancelling it) ends the request's context, as a dropped
// connection would, and the handler decides what that means for the step (a
// body under way is not interrupted); the delivery then waits for the
// handler's answer (over TCP it would have given up and been retried, to
// meet a lease held until that answer). The handler runs on the delivery's
// goroutine: no hand-over to another.
//
// serve waits for the requests in flight here as it waits for its
// connections' (drain), and refuses new ones once it is shutting down.
type inProcess struct {
	// handler returns the service's handler at the time of the request (a
	// benchmark or test may wrap it after the queue was built).
	handler func() http.Handler

	mu sync.Mutex
	// base is what serve cancels, with its cause, to interrupt requests.
	base    context.Context
	running int
	closed  bool
	// idle is closed when running drops to 0 after close.
	idle chan struct{}
}

var _ http.RoundTripper = (*inProcess)(nil)

func newInProcess(handler func() http.Handler) *inProcess {
	return &inProcess{handler: handler, base: context.Background(), idle: make(chan struct{})}
}

// client is the http.Client the local queue delivers with. Like Cloud
// Tasks, a redirect is an answer, not a success.
func (t *inProcess) client() *http.Client {
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// open starts taking requests whose contexts end with base's cause. A nil
// transport (the gcp backend has none) does nothing.
func (t *inProcess) open(base context.Context) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.base, t.closed, t.idle = base, false, make(chan struct{})
}

// close refuses new requests and returns a channel closed once none is in
// flight (at once for a nil transport).
func (t *inProcess) close() <-chan struct{} {
	if t == nil {
		idle := make(chan struct{})
		close(idle)
		return idle
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		if t.running == 0 {
			close(t.idle)
		}
	}
	return t.idle
}

func (t *inProcess) enter() (context.Context, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, false
	}
	t.running++
	return t.base, true
}

func (t *inProcess) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running--; t.running == 0 && t.closed {
		close(t.idle)
	}
}

// RoundTrip serves req with the handler, on the caller's goroutine, and
// returns its answer.
func (t *inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	base, ok := t.enter()
	if !ok {
		// Shutting down: a 503 the queue keeps the task for (not counted
		// against it), as it does a request interrupted by shutdown.
		closeBody(req)
		w := &responseRecorder{header: http.Header{}}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"message":"the service is shutting down"}`)
		return w.response(req), nil
	}
	defer t.leave()
	defer closeBody(req)
	sreq, cancel := serverRequest(req, base)
	defer cancel()
	w := &responseRecorder{header: http.Header{}}
	if err := serveRecovering(t.handler(), w, sreq); err != nil {
		return nil, err
	}
	return w.response(req), nil
}

// serverRequest is req as a server would hand it to its handler (the body
// is req's, read by the handler; the caller closes it), with a context
// carrying req's values that ends with req's context or with base (with
// base's cause). The returned function releases the context.
func serverRequest(req *http.Request, base context.Context) (*http.Request, func()) {
	ctx, cancel := context.WithCancelCause(req.Context())
	stop := context.AfterFunc(base, func() { cancel(context.Cause(base)) })
	sreq := req.WithContext(ctx) // a shallow copy: headers are shared, not mutated
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "127.0.0.1:0"
	sreq.Host = req.URL.Host
	sreq.Proto, sreq.ProtoMajor, sreq.ProtoMinor = "HTTP/1.1", 1, 1
	return sreq, func() { stop(); cancel(context.Canceled) }
}

// serveRecovering runs h, turning a panic that escaped it into an error
// (net/http's server would log it and drop the connection: no answer).
func serveRecovering(h http.Handler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				err = fmt.Errorf("in-process delivery: handler aborted")
				return
			}
			err = fmt.Errorf("in-process delivery: handler panicked: %v", p)
		}
	}()
	h.ServeHTTP(w, r)
	return nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// responseRecorder is the handler's http.ResponseWriter: it keeps the
// status, the headers as they were when the status was written, and the
// body.
type responseRecorder struct {
	header http.Header
	sent   http.Header
	status int
	body   bytes.Buffer
}

func (w *responseRecorder) Header() http.Header { return w.header }

func (w *responseRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status, w.sent = code, w.header.Clone()
	}
}

func (w *responseRecorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Flush is a no-op: the whole answer is read once the handler returns.
func (w *responseRecorder) Flush() {}

func (w *responseRecorder) response(req *http.Request) *http.Response {
	w.WriteHeader(http.StatusOK) // a handler that wrote nothing answered 200
	return &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}
}
