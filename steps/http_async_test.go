package steps_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// jobService is a local stand-in of an asynchronous HTTP API: POST /jobs
// answers 202 with a Location; GET /jobs/1 answers the queued statuses in
// turn (then 200 with the result).
type jobService struct {
	mu       sync.Mutex
	starts   int
	keys     []string
	statuses []int
	header   http.Header // headers of the last status request
}

func (s *jobService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/jobs":
		s.starts++
		s.keys = append(s.keys, r.Header.Get("X-Pipeline-Attempt-Key"))
		w.Header().Set("Location", "/jobs/1")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && r.URL.Path == "/body-status":
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status_url":"/jobs/1"}`))
	case r.Method == http.MethodPost && r.URL.Path == "/no-status":
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && r.URL.Path == "/jobs/1":
		s.header = r.Header.Clone()
		code := http.StatusOK
		if len(s.statuses) > 0 {
			code, s.statuses = s.statuses[0], s.statuses[1:]
		}
		switch code {
		case http.StatusOK:
			_, _ = w.Write([]byte(`{"rows": 5}`))
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(code)
		default:
			w.WriteHeader(code)
			_, _ = w.Write([]byte(`{"error":"job failed"}`))
		}
	default:
		http.NotFound(w, r)
	}
}

func newAsyncHTTP(t *testing.T, url string, extra map[string]any) steps.AsyncStep {
	t.Helper()
	settings := map[string]any{"url": url, "async": true, "check_interval": "5m", "headers": map[string]any{"X-Api-Key": "k-{{.Date}}"}}
	for k, v := range extra {
		settings[k] = v
	}
	st, err := steps.NewHTTP(settings)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := st.(steps.AsyncStep)
	if !ok {
		t.Fatalf("%T is not asynchronous", st)
	}
	return a
}

func TestAsyncHTTPStartAndCheck(t *testing.T) {
	svc := &jobService{statuses: []int{http.StatusServiceUnavailable, http.StatusAccepted, http.StatusOK}}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	a := newAsyncHTTP(t, srv.URL+"/jobs", nil)
	in := testInput()
	in.Generation = 2 // an operator's re-run: its key differs from the first run's

	poll, err := a.Start(t.Context(), in)
	if err != nil || poll.Done || poll.After != 5*time.Minute || poll.Link != srv.URL+"/jobs/1" {
		t.Fatalf("start: %+v, %v", poll, err)
	}
	if svc.starts != 1 || svc.keys[0] != fmt.Sprintf("daily@2026-03-14/%s/g2/a%d", in.Step, in.Attempt) {
		t.Fatalf("starts %d, keys %v", svc.starts, svc.keys)
	}
	// 503 with Retry-After: transient, asking for 7s.
	_, err = a.Check(t.Context(), in, poll.State)
	if d, ok := steps.RetryAfterOf(err); err == nil || steps.IsPermanent(err) || !ok || d != 7*time.Second {
		t.Fatalf("check on 503: %v (retry after %s, %v)", err, d, ok)
	}
	// 202: still running.
	p2, err := a.Check(t.Context(), in, poll.State)
	if err != nil || p2.Done || string(p2.State) != string(poll.State) {
		t.Fatalf("check on 202: %+v, %v", p2, err)
	}
	// 200: done with the JSON body.
	p3, err := a.Check(t.Context(), in, p2.State)
	if err != nil || !p3.Done || string(p3.Output) != `{"rows":5}` {
		t.Fatalf("check on 200: %+v, %v", p3, err)
	}
	if got := svc.header.Get("X-Api-Key"); got != "k-2026-03-14" {
		t.Fatalf("status request header X-Api-Key = %q", got)
	}
	if svc.starts != 1 {
		t.Fatalf("checks started the work again: %d starts", svc.starts)
	}
}

func TestAsyncHTTPFailures(t *testing.T) {
	svc := &jobService{statuses: []int{http.StatusNotFound}}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	in := testInput()
	a := newAsyncHTTP(t, srv.URL+"/jobs", nil)
	poll, err := a.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(t.Context(), in, poll.State); !steps.IsPermanent(err) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("check on 404: %v, want permanent", err)
	}
	// A status URL in the body.
	b := newAsyncHTTP(t, srv.URL+"/body-status", nil)
	if p, err := b.Start(t.Context(), in); err != nil || !strings.Contains(string(p.State), srv.URL+"/jobs/1") {
		t.Fatalf("status_url in the body: %+v, %v", p, err)
	}
	// 202 with nothing to check: permanent, saying why.
	c := newAsyncHTTP(t, srv.URL+"/no-status", nil)
	if _, err := c.Start(t.Context(), in); !steps.IsPermanent(err) || !strings.Contains(err.Error(), "Location") {
		t.Fatalf("202 without a status url: %v", err)
	}
	// A start refused with 4xx fails for good.
	d := newAsyncHTTP(t, srv.URL+"/nowhere", nil)
	if _, err := d.Start(t.Context(), in); !steps.IsPermanent(err) {
		t.Fatalf("start on 404: %v", err)
	}
	// A state without a url is refused.
	if _, err := a.Check(t.Context(), in, json.RawMessage(`{}`)); !steps.IsPermanent(err) {
		t.Fatalf("empty state: %v", err)
	}
}

func TestAsyncHTTPSettings(t *testing.T) {
	if _, err := steps.NewHTTP(map[string]any{"url": "https://example.com", "check_interval": "1m"}); err == nil || !strings.Contains(err.Error(), "async") {
		t.Fatalf("check_interval without async: %v", err)
	}
	if _, err := steps.NewHTTP(map[string]any{"url": "https://example.com", "async": "yes"}); err == nil || !strings.Contains(err.Error(), "true or false") {
		t.Fatalf("async not a bool: %v", err)
	}
	st, err := steps.NewHTTP(map[string]any{"url": "https://example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(steps.AsyncStep); ok {
		t.Fatal("a plain http step is asynchronous")
	}
	var e error = errors.New("x")
	if _, ok := steps.RetryAfterOf(e); ok {
		t.Fatal("RetryAfterOf on a plain error")
	}
}

// A 202 naming a status URL on another origin (scheme, host and port) is
// refused: each check sends the step's headers (API keys) and ID token to
// the status URL, so a service, or whoever controls its answer, could
// otherwise have them sent anywhere. Nothing is sent to that origin.
func TestAsyncHTTPStatusURLOnAnotherOriginIsRefused(t *testing.T) {
	var mu sync.Mutex
	var leaked []http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer other.Close()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/location":
			w.Header().Set("Location", other.URL+"/steal")
			w.WriteHeader(http.StatusAccepted)
		case "/body":
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status_url":"` + other.URL + `/steal"}`))
		case "/moves":
			w.Header().Set("Location", "/jobs/1")
			w.WriteHeader(http.StatusAccepted)
		case "/jobs/1": // a check answers 202 moving the status elsewhere
			w.Header().Set("Location", other.URL+"/steal")
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	}))
	defer svc.Close()
	in := testInput()
	for _, path := range []string{"/location", "/body"} {
		a := newAsyncHTTP(t, svc.URL+path, nil)
		_, err := a.Start(t.Context(), in)
		if !steps.IsPermanent(err) || !strings.Contains(err.Error(), "another origin") || !strings.Contains(err.Error(), other.URL) {
			t.Fatalf("start via %s: %v, want a permanent error naming the other origin", path, err)
		}
	}
	a := newAsyncHTTP(t, svc.URL+"/moves", nil)
	poll, err := a.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(t.Context(), in, poll.State); !steps.IsPermanent(err) || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("check moving the status to another origin: %v, want permanent", err)
	}
	// A state naming another origin (recorded by an older binary) is not checked either.
	st, _ := json.Marshal(map[string]string{"url": other.URL + "/steal"})
	if _, err := a.Check(t.Context(), in, st); !steps.IsPermanent(err) || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("check of a state on another origin: %v, want permanent", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) != 0 {
		t.Fatalf("%d requests reached the other origin (X-Api-Key %q)", len(leaked), leaked[0].Get("X-Api-Key"))
	}
}

// The attempt key a start sends carries the ledger's namespace when the
// orchestrator gives one: a service shared by two deployments (staging and
// production) does not take one's start for the other's duplicate.
func TestAsyncHTTPAttemptKeyCarriesTheNamespace(t *testing.T) {
	svc := &jobService{}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	a := newAsyncHTTP(t, srv.URL+"/jobs", nil)
	staging, production := testInput(), testInput()
	staging.Namespace, production.Namespace = "projects/acme/databases/(default)/documents/staging", "bolt/7f3a"
	for _, in := range []steps.Input{staging, production} {
		if _, err := a.Start(t.Context(), in); err != nil {
			t.Fatal(err)
		}
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	base := steps.AttemptKey(staging)
	if len(svc.keys) != 2 || svc.keys[0] == svc.keys[1] || !strings.HasPrefix(svc.keys[0], base+"/") || !strings.HasPrefix(svc.keys[1], base+"/") {
		t.Fatalf("attempt keys %q, want %s/<ledger> each, different", svc.keys, base)
	}
}

// A start or a check redirected to another origin is not followed (the
// step's headers would go along): the redirect's status fails the step,
// naming it. A redirect within the origin is followed as before.
func TestAsyncHTTPRedirectToAnotherOriginIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	reached := 0
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
		_, _ = w.Write([]byte(`{"stolen": true}`))
	}))
	defer other.Close()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jobs":
			w.Header().Set("Location", "/jobs/1")
			w.WriteHeader(http.StatusAccepted)
		case "/jobs/1": // done: the result is elsewhere on the same origin
			http.Redirect(w, r, "/results/1", http.StatusSeeOther)
		case "/results/1":
			_, _ = w.Write([]byte(`{"rows": 5}`))
		case "/away":
			w.Header().Set("Location", "/away/1")
			w.WriteHeader(http.StatusAccepted)
		case "/away/1":
			http.Redirect(w, r, other.URL+"/result", http.StatusSeeOther)
		default:
			http.NotFound(w, r)
		}
	}))
	defer svc.Close()
	in := testInput()
	a := newAsyncHTTP(t, svc.URL+"/jobs", nil)
	poll, err := a.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Check(t.Context(), in, poll.State); err != nil || !p.Done || string(p.Output) != `{"rows":5}` {
		t.Fatalf("check redirected within the origin: %+v, %v", p, err)
	}
	b := newAsyncHTTP(t, svc.URL+"/away", nil)
	poll, err = b.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Check(t.Context(), in, poll.State); !steps.IsPermanent(err) || !strings.Contains(err.Error(), "303") {
		t.Fatalf("check redirected to another origin: %v, want a permanent error naming the 303", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if reached != 0 {
		t.Fatalf("the other origin was reached %d times", reached)
	}
}
