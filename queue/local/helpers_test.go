package local

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// guard bounds how long a test waits for something that should happen; it is
// a hang guard, not a timing assertion.
const guard = 60 * time.Second // generous: the machine may be loaded

func openDB(t testing.TB, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db.MaxBatchDelay = 200 * time.Microsecond
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func tempDB(t testing.TB) *bbolt.DB {
	return openDB(t, filepath.Join(t.TempDir(), "pipeline.db"))
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// delivery is one request the test server received.
type delivery struct {
	Header  http.Header
	Payload pipeline.TaskPayload
	Path    string
	At      time.Time
}

// server is a step endpoint that records deliveries and answers with reply.
type server struct {
	*httptest.Server
	got   chan delivery
	reply func(w http.ResponseWriter, r *http.Request, d delivery)
}

func newServer(t testing.TB, reply func(w http.ResponseWriter, r *http.Request, d delivery)) *server {
	t.Helper()
	s := &server{got: make(chan delivery, 1024), reply: reply}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := delivery{Header: r.Header.Clone(), Path: r.URL.Path, At: time.Now()}
		if err := json.NewDecoder(r.Body).Decode(&d.Payload); err != nil {
			t.Errorf("decode body: %v", err)
		}
		s.got <- d
		if s.reply != nil {
			s.reply(w, r, d)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) next(t testing.TB) delivery {
	t.Helper()
	select {
	case d := <-s.got:
		return d
	case <-time.After(guard):
		t.Fatal("no delivery")
		return delivery{}
	}
}

// none checks that nothing more was delivered once q has nothing pending.
func (s *server) none(t testing.TB, q *Queue) {
	t.Helper()
	waitIdle(t, q)
	select {
	case d := <-s.got:
		t.Fatalf("unexpected delivery of %s", d.Header.Get(HeaderTaskName))
	default:
	}
}

func waitIdle(t testing.TB, q *Queue) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for q.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue still has %d tasks pending", q.Pending())
		}
		time.Sleep(time.Millisecond)
	}
}

func newQueue(t testing.TB, db *bbolt.DB, cfg Config) *Queue {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	q, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// run runs q until the test ends (or stop is called) and reports Run's error.
func run(t testing.TB, q *Queue) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func task(name, step string) pipeline.Task {
	return pipeline.Task{Name: name, Payload: pipeline.TaskPayload{RunID: "daily@2026-01-02", Step: step, Generation: 1}}
}

func enqueue(t testing.TB, q *Queue, ts ...pipeline.Task) {
	t.Helper()
	for _, tk := range ts {
		if err := q.Enqueue(context.Background(), tk); err != nil {
			t.Fatalf("enqueue %s: %v", tk.Name, err)
		}
	}
}

func status(code int) func(http.ResponseWriter, *http.Request, delivery) {
	return func(w http.ResponseWriter, _ *http.Request, _ delivery) { w.WriteHeader(code) }
}
