package local

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestRecoverTasksEnqueuedWithoutRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pipeline.db")
	db := openDB(t, path)
	q := newQueue(t, db, Config{})
	enqueue(t, q, task("a", "s"), task("b", "s"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	srv := newServer(t, status(http.StatusOK))
	q = newQueue(t, openDB(t, path), Config{BaseURL: srv.URL})
	if n := q.Pending(); n != 2 {
		t.Fatalf("pending after reopen = %d, want 2", n)
	}
	run(t, q)
	got := map[string]bool{srv.next(t).Header.Get(HeaderTaskName): true, srv.next(t).Header.Get(HeaderTaskName): true}
	if !got["a"] || !got["b"] {
		t.Errorf("delivered %v", got)
	}
	srv.none(t, q)
}

func TestRecoverFailingTaskKeepsRetryCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pipeline.db")
	db := openDB(t, path)
	broken := newServer(t, status(http.StatusInternalServerError))
	q := newQueue(t, db, Config{BaseURL: broken.URL, MinBackoff: 1, MaxBackoff: 1})
	stop := run(t, q)
	enqueue(t, q, task("stubborn", "s"))
	broken.next(t)
	broken.next(t)
	stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	srv := newServer(t, status(http.StatusOK))
	q = newQueue(t, openDB(t, path), Config{BaseURL: srv.URL})
	run(t, q)
	r, e := counts(srv.next(t))
	if n, _ := strconv.Atoi(r); n < 2 || r != e {
		t.Errorf("after restart: retry count %s, execution count %s, want the same, at least 2", r, e)
	}
	srv.none(t, q)
}

// TestRecoverAfterKill kills a process (this test binary, re-run as a child)
// while its deliveries hang, and finishes its tasks in a new queue.
func TestRecoverAfterKill(t *testing.T) {
	if path := os.Getenv("LOCALQUEUE_CHILD_DB"); path != "" {
		crashChild(t, path, os.Getenv("LOCALQUEUE_CHILD_URL"))
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	const tasks = 5
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	hanging := newServer(t, func(w http.ResponseWriter, r *http.Request, _ delivery) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	path := filepath.Join(t.TempDir(), "pipeline.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecoverAfterKill$")
	cmd.Env = append(os.Environ(), "LOCALQUEUE_CHILD_DB="+path, "LOCALQUEUE_CHILD_URL="+hanging.URL)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hanging.next(t) // the child is delivering
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	srv := newServer(t, status(http.StatusOK))
	q := newQueue(t, openDB(t, path), Config{BaseURL: srv.URL})
	if n := q.Pending(); n != tasks {
		t.Fatalf("pending after the kill = %d, want %d", n, tasks)
	}
	run(t, q)
	got := map[string]bool{}
	for range tasks {
		got[srv.next(t).Header.Get(HeaderTaskName)] = true
	}
	srv.none(t, q)
	if len(got) != tasks {
		t.Errorf("delivered %v", got)
	}
}

// crashChild enqueues tasks to url and delivers them until it is killed.
func crashChild(t *testing.T, path, url string) {
	db := openDB(t, path)
	q := newQueue(t, db, Config{BaseURL: url, Concurrency: 2})
	for i := range 5 {
		enqueue(t, q, task(fmt.Sprintf("crash-%d", i), "s"))
	}
	_ = q.Run(context.Background()) // until killed
}
