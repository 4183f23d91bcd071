package local

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func counts(d delivery) (retry, exec string) {
	return d.Header.Get(HeaderRetryCount), d.Header.Get(HeaderExecutionCount)
}

func TestRetryWithBackoffUntilSuccess(t *testing.T) {
	var n int // only the handler touches it, one delivery at a time
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ delivery) {
		if n++; n <= 3 {
			http.Error(w, "not yet", http.StatusInternalServerError)
		}
	})
	lo, maxB := 10*time.Millisecond, 25*time.Millisecond
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, MinBackoff: lo, MaxBackoff: maxB})
	run(t, q)
	enqueue(t, q, task("flaky", "extract"))

	var ds []delivery
	for range 4 {
		ds = append(ds, srv.next(t))
	}
	for i, d := range ds {
		if r, e := counts(d); r != strconv.Itoa(i) || e != strconv.Itoa(i) {
			t.Errorf("delivery %d: retry count %s, execution count %s, want %d", i, r, e, i)
		}
	}
	// Each retry waits at least its backoff: 10 ms, 20 ms, then capped at 25 ms.
	for i, want := range []time.Duration{lo, 2 * lo, maxB} {
		if gap := ds[i+1].At.Sub(ds[i].At); gap < want {
			t.Errorf("gap before retry %d = %s, want at least %s", i+1, gap, want)
		}
	}
	srv.none(t, q)
}

func TestConnectionErrorIsRetriedWithoutExecution(t *testing.T) {
	var n int
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ delivery) {
		if n++; n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close() // no response at all
		}
	})
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, MinBackoff: time.Millisecond})
	run(t, q)
	enqueue(t, q, task("dropped", "extract"))
	srv.next(t)
	if r, e := counts(srv.next(t)); r != "1" || e != "0" {
		t.Errorf("after a dropped connection: retry count %s, execution count %s, want 1, 0", r, e)
	}
	srv.none(t, q)
}

func TestDeadlineIsRetried(t *testing.T) {
	var n int
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ delivery) {
		if n++; n == 1 {
			<-r.Context().Done() // hang until the queue gives up
		}
	})
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, MinBackoff: time.Millisecond})
	run(t, q)
	tk := task("slow", "extract")
	tk.Deadline = 50 * time.Millisecond
	enqueue(t, q, tk)
	srv.next(t)
	if r, e := counts(srv.next(t)); r != "1" || e != "0" {
		t.Errorf("after a timeout: retry count %s, execution count %s, want 1, 0", r, e)
	}
	srv.none(t, q)
}

func TestMaxAttemptsDeadLetters(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ delivery) {
		http.Error(w, "always broken", http.StatusBadGateway)
	})
	db := tempDB(t)
	q := newQueue(t, db, Config{BaseURL: srv.URL, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAttempts: 3})
	run(t, q)
	enqueue(t, q, task("doomed", "extract"))
	for range 3 {
		srv.next(t)
	}
	srv.none(t, q)

	dead, err := q.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 {
		t.Fatalf("dead letters = %+v, want one", dead)
	}
	d := dead[0]
	if d.Task.Name != "doomed" || d.Task.Payload.Step != "extract" || d.Attempts != 3 ||
		!strings.Contains(d.LastError, "502") || !strings.Contains(d.LastError, "always broken") ||
		d.DiedAt.Before(d.CreatedAt) {
		t.Errorf("dead letter = %+v", d)
	}
	// Its name stays used, and the dead letter survives a reopen.
	enqueue(t, q, task("doomed", "extract"))
	srv.none(t, q)
	q2 := newQueue(t, db, Config{BaseURL: srv.URL})
	if dead, err := q2.DeadLetters(context.Background()); err != nil || len(dead) != 1 || q2.Pending() != 0 {
		t.Errorf("after reopen: dead letters %d (%v), pending %d", len(dead), err, q2.Pending())
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var slow int
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, d delivery) {
		if d.Payload.Step == "slow" {
			if slow++; slow == 1 {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}
	})
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	run(t, q)
	enqueue(t, q, task("slow", "slow"))
	first := srv.next(t)
	// Due long after the 1 ms backoff but well before Retry-After's 3 s: the
	// margin (2.8 s) keeps the order even when a loaded machine starves the
	// dispatcher for a while.
	fast := task("fast", "fast")
	fast.Delay = 200 * time.Millisecond
	enqueue(t, q, fast)

	var order []string
	for range 2 {
		d := srv.next(t)
		order = append(order, d.Payload.Step)
		if d.Payload.Step == "slow" && d.At.Sub(first.At) < 3*time.Second {
			t.Errorf("retried %s after a 503 with Retry-After: 3", d.At.Sub(first.At))
		}
	}
	if strings.Join(order, ",") != "fast,slow" {
		t.Errorf("order after the 503 = %v, want fast then slow", order)
	}
	srv.none(t, q)
}

func TestRetryDelay(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		" 7 ":                           7 * time.Second,
		"-5":                            0,
		"soon":                          0,
		"99999999999999":                MaxRetryAfter,
		"Fri, 02 Jan 2026 03:04:35 GMT": 30 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
	for n, want := range map[int]time.Duration{1: 100, 2: 200, 3: 400, 4: 800, 5: 1000, 60: 1000, 1000: 1000} {
		if got := backoff(100, 1000, n); got != want {
			t.Errorf("backoff(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestRedirectIsNotSuccess(t *testing.T) {
	var n int
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ delivery) {
		if n++; n == 1 {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	})
	q := newQueue(t, tempDB(t), Config{BaseURL: srv.URL, MinBackoff: time.Millisecond})
	run(t, q)
	enqueue(t, q, task("moved", "s"))
	srv.next(t)
	d := srv.next(t)
	if r, e := counts(d); d.Path != "/pipeline/steps/s" || r != "1" || e != "1" {
		t.Errorf("after a 302: path %s, retry count %s, execution count %s", d.Path, r, e)
	}
	srv.none(t, q)
}
