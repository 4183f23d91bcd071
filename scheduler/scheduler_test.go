package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/scheduler"
	"github.com/pipelinehq/pipeline/steps"
)

type hit struct {
	path, scheduleTime, auth, pipeline string
}

func server(t *testing.T) (*httptest.Server, chan hit) {
	hits := make(chan hit, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Pipeline string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		hits <- hit{r.URL.Path, r.Header.Get("X-CloudScheduler-ScheduleTime"), r.Header.Get("Authorization"), body.Pipeline}
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

func TestLocalFiresLikeCloudScheduler(t *testing.T) {
	defs, err := pipeline.Parse("p.yaml", []byte(`
name: every
time_zone: Asia/Tokyo
schedule: "@every 1s"
steps: [{name: a, kind: noop}]
`), steps.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv, hits := server(t)
	token := func(context.Context, string) (string, error) { return "tok", nil }
	l := &scheduler.Local{Catalog: pipeline.NewCatalog(defs...), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Fire: scheduler.HTTPFire(func() string { return srv.URL }, token, "aud", nil)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = l.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	select {
	case h := <-hits:
		if h.path != "/pipeline/start" || h.auth != "Bearer tok" || h.pipeline != "every" {
			t.Fatalf("hit = %+v", h)
		}
		if _, err := time.Parse(time.RFC3339, h.scheduleTime); err != nil {
			t.Fatalf("X-CloudScheduler-ScheduleTime %q: %v", h.scheduleTime, err)
		}
	case <-time.After(60 * time.Second): // generous: a loaded machine
		t.Fatal("the schedule never fired")
	}
}

func TestTickPostsReconcile(t *testing.T) {
	srv, hits := server(t)
	tick := &scheduler.Tick{Every: 10 * time.Millisecond, Fire: scheduler.HTTPPost(func() string { return srv.URL }, "/pipeline/reconcile", nil, "", nil)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tick.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case h := <-hits:
		if h.path != "/pipeline/reconcile" {
			t.Fatalf("hit = %+v", h)
		}
	case <-time.After(60 * time.Second): // generous: a loaded machine
		t.Fatal("never ticked")
	}
}

// A paused pipeline's fire times are skipped: the first fire, asked while
// paused, reaches no one; the next one (after unpausing) does.
func TestLocalSkipsPausedPipeline(t *testing.T) {
	defs, err := pipeline.Parse("p.yaml", []byte(`
name: every
schedule: "@every 1s"
steps: [{name: a, kind: noop}]
`), steps.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		log []string
	)
	add := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, s)
	}
	srv, hits := server(t)
	asks := 0
	l := &scheduler.Local{Catalog: pipeline.NewCatalog(defs...), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Fire: func(ctx context.Context, def *pipeline.Definition, at time.Time) error {
			add("fire")
			return scheduler.HTTPFire(func() string { return srv.URL }, nil, "", nil)(ctx, def, at)
		},
		Paused: func(_ context.Context, name string) (bool, error) {
			asks++ // one goroutine per pipeline: no race
			add(fmt.Sprintf("asked %s paused=%v", name, asks == 1))
			return asks == 1, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = l.Run(ctx) }()
	select {
	case <-hits:
	case <-time.After(10 * time.Second):
		t.Fatal("the schedule never fired after unpausing")
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	want := []string{"asked every paused=true", "asked every paused=false", "fire"}
	if len(log) < 3 || log[0] != want[0] || log[1] != want[1] || log[2] != want[2] {
		t.Errorf("events %q; want %q first", log, want)
	}
}
