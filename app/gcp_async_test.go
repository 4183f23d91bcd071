package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The gcp backend (Firestore and Cloud Tasks emulators, OIDC on every
// delivery) runs the async example pipeline: the export step starts its
// work once, waits through check tasks the queue delays (each a short
// request), then the run succeeds.
func TestGCPBackendWaitsOnAnAsyncService(t *testing.T) {
	var mu sync.Mutex
	posts, gets := 0, 0
	var ready time.Time
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/exports":
			posts++
			ready = time.Now().Add(time.Second)
			w.Header().Set("Location", "/exports/1")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodGet && r.URL.Path == "/exports/1":
			gets++
			if time.Now().Before(ready) {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			_, _ = w.Write([]byte(`{"export":"1","rows":1001}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer svc.Close()
	g := startGCPStack(t, filepath.Join("..", "pipelines", "examples", "async.yaml"))
	code, out := g.call("POST", "/pipeline/start", schedulerSA, map[string]any{
		"pipeline": "async", "date": "2026-03-14", "params": map[string]string{"service_url": svc.URL},
	}, nil)
	if code != 201 {
		t.Fatalf("start = %d %v", code, out)
	}
	run := g.waitRun("async@2026-03-14")
	if run["status"] != "succeeded" {
		t.Fatalf("run = %v", run)
	}
	var export map[string]any
	for _, s := range run["steps"].([]any) {
		if st := s.(map[string]any); st["step"] == "export" {
			export = st
		}
	}
	output, _ := json.Marshal(export["output"])
	if export["attempts"] != float64(1) || !strings.Contains(string(output), `"rows":1001`) || export["link"] != svc.URL+"/exports/1" {
		t.Fatalf("export step %v", export)
	}
	st := g.waitQueueIdle()
	mu.Lock()
	defer mu.Unlock()
	// 4 step tasks and one task per check; every task succeeded once.
	if posts != 1 || gets < 1 || st.Created != int64(4+gets) || st.Succeeded != st.Created {
		t.Fatalf("posts %d, checks %d, emulator %+v", posts, gets, st)
	}
}
