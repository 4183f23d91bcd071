package local

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

func TestDeliveryHeadersAndBody(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, QueueName: "steps"})
	run(t, q)
	want := pipeline.Task{Name: "abc123-extract-g2", Payload: pipeline.TaskPayload{
		RunID: "daily@2026-01-02", Step: "extract", Generation: 2, Date: "2026-01-02",
		Params: map[string]string{"region": "eu"}, Force: true, Only: true}}
	before := time.Now()
	enqueue(t, q, want)

	d := srv.next(t)
	if d.Path != "/pipeline/steps/extract" {
		t.Errorf("path = %q", d.Path)
	}
	if !reflect.DeepEqual(d.Payload, want.Payload) {
		t.Errorf("payload = %+v, want %+v", d.Payload, want.Payload)
	}
	for h, v := range map[string]string{
		"Content-Type":       "application/json",
		HeaderQueueName:      "steps",
		HeaderTaskName:       "abc123-extract-g2",
		HeaderRetryCount:     "0",
		HeaderExecutionCount: "0",
		"Authorization":      "",
	} {
		if got := d.Header.Get(h); got != v {
			t.Errorf("%s = %q, want %q", h, got, v)
		}
	}
	eta, err := strconv.ParseFloat(d.Header.Get(HeaderETA), 64)
	if err != nil {
		t.Fatalf("ETA header %q: %v", d.Header.Get(HeaderETA), err)
	}
	if sec := float64(before.UnixMicro()) / 1e6; eta < sec-1e-6 || eta > float64(d.At.UnixMicro())/1e6+1e-6 {
		t.Errorf("ETA %f is not between enqueue (%f) and delivery", eta, sec)
	}
	waitIdle(t, q)
}

func TestTokenHeader(t *testing.T) {
	srv := newServer(t, status(http.StatusNoContent))
	var audiences []string
	q := newQueue(t, tempDB(t), Config{Token: func(_ context.Context, aud string) (string, error) {
		audiences = append(audiences, aud) // one delivery: no race
		return "tok-" + aud, nil
	}})
	q.SetBaseURL(srv.URL) // after New, before Run: the default audience follows it
	run(t, q)
	enqueue(t, q, task("t1", "load"))
	if got, want := srv.next(t).Header.Get("Authorization"), "Bearer tok-"+srv.URL; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	waitIdle(t, q)
	if len(audiences) != 1 || audiences[0] != srv.URL {
		t.Errorf("audiences = %q", audiences)
	}
}

func TestTokenErrorIsRetried(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	calls := make(chan string, 10)
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, Audience: "https://svc.example", MinBackoff: time.Millisecond,
		Token: func(_ context.Context, aud string) (string, error) {
			calls <- aud
			if len(calls) == 1 {
				return "", errors.New("metadata server unreachable")
			}
			return "ok", nil
		}})
	run(t, q)
	enqueue(t, q, task("t1", "load"))
	d := srv.next(t)
	if d.Header.Get("Authorization") != "Bearer ok" || d.Header.Get(HeaderRetryCount) != "1" || d.Header.Get(HeaderExecutionCount) != "0" {
		t.Errorf("headers after a token failure: %v", d.Header)
	}
	if aud := <-calls; aud != "https://svc.example" {
		t.Errorf("audience = %q", aud)
	}
}

func TestDedupReusedName(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL})
	// Pending: the second enqueue is refused without an error.
	enqueue(t, q, task("same", "a"), task("same", "b"))
	if n := q.Pending(); n != 1 {
		t.Fatalf("pending = %d, want 1", n)
	}
	run(t, q)
	if d := srv.next(t); d.Payload.Step != "a" {
		t.Errorf("delivered step %q, want the first task's", d.Payload.Step)
	}
	waitIdle(t, q)
	// Finished: still refused within the window.
	enqueue(t, q, task("same", "c"))
	srv.none(t, q)
}

func TestDedupWindowExpires(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, DedupWindow: time.Nanosecond})
	run(t, q)
	enqueue(t, q, task("again", "a"))
	srv.next(t)
	waitIdle(t, q)
	enqueue(t, q, task("again", "b"))
	if d := srv.next(t); d.Payload.Step != "b" {
		t.Errorf("step = %q", d.Payload.Step)
	}
}

func TestDedupConcurrentEnqueue(t *testing.T) {
	srv := newServer(t, status(http.StatusOK))
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL})
	run(t, q)
	errs := make(chan error, 20)
	for range 20 {
		go func() { errs <- q.Enqueue(context.Background(), task("racy", "a")) }()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	srv.next(t)
	srv.none(t, q)
}

func TestEnqueueValidation(t *testing.T) {
	q := newQueue(t, tempDB(t), Config{BaseURL: "http://127.0.0.1:1"})
	huge := task("big", "s")
	huge.Payload.Step = strings.Repeat("x", MaxTaskSize)
	for name, tk := range map[string]pipeline.Task{
		"empty name":    task("", "s"),
		"bad character": task("a/b", "s"),
		"dot":           task("a.b", "s"),
		"name too long": task(strings.Repeat("a", 501), "s"),
		"no step":       task("ok", ""),
		"too large":     huge,
	} {
		err := q.Enqueue(context.Background(), tk)
		if !errors.Is(err, pipeline.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if err := q.Enqueue(context.Background(), task(strings.Repeat("a", 500), "s")); err != nil {
		t.Errorf("500-character name: %v", err)
	}
	if n := q.Pending(); n != 1 {
		t.Errorf("pending = %d, want 1", n)
	}
}

func TestRunTwice(t *testing.T) {
	q := newQueue(t, tempDB(t), Config{BaseURL: "http://127.0.0.1:1"})
	run(t, q)
	// Wait until the first Run has marked itself running.
	for {
		q.mu.Lock()
		r := q.running
		q.mu.Unlock()
		if r {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := q.Run(context.Background()); err == nil {
		t.Error("second Run did not fail")
	}
}
