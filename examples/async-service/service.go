package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxSeconds bounds how long one export may be asked to take.
const maxSeconds = 24 * 60 * 60

// service is an asynchronous export API, the shape the `http` kind with
// `async: true` waits on:
//
//	POST /exports?date=D&seconds=N   202 Accepted, Location: /exports/ID
//	GET  /exports/ID                 202 while running, 200 with the result
//
// A start carrying an X-Pipeline-Attempt-Key it has seen answers with the
// export that key started (a start repeated after a crash is not doubled).
type service struct {
	now func() time.Time

	mu      sync.Mutex
	exports map[string]*export
	byKey   map[string]string // attempt key -> export ID
	next    int
}

type export struct {
	ID      string    `json:"export"`
	Date    string    `json:"date"`
	Started time.Time `json:"started"`
	Ready   time.Time `json:"ready"`
	Rows    int       `json:"rows"`
}

func newService(now func() time.Time) *service {
	return &service{now: now, exports: map[string]*export{}, byKey: map[string]string{}}
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/exports" && r.Method == http.MethodPost:
		s.start(w, r)
	case strings.HasPrefix(r.URL.Path, "/exports/") && r.Method == http.MethodGet:
		s.status(w, strings.TrimPrefix(r.URL.Path, "/exports/"))
	case r.URL.Path == "/exports" || strings.HasPrefix(r.URL.Path, "/exports/"):
		problem(w, http.StatusMethodNotAllowed, "use POST /exports to start an export and GET /exports/ID to check it")
	default:
		problem(w, http.StatusNotFound, "no such endpoint: POST /exports?date=YYYY-MM-DD&seconds=N starts an export")
	}
}

// start begins an export of the date that takes the given seconds.
func (s *service) start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	date := q.Get("date")
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		problem(w, http.StatusBadRequest, fmt.Sprintf("date %q is not YYYY-MM-DD", date))
		return
	}
	seconds := 5
	if v := q.Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxSeconds {
			problem(w, http.StatusBadRequest, fmt.Sprintf("seconds %q must be a whole number from 0 to %d", v, maxSeconds))
			return
		}
		seconds = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.Header.Get("X-Pipeline-Attempt-Key")
	id, seen := s.byKey[key]
	if !seen || key == "" {
		s.next++
		id = strconv.Itoa(s.next)
		now := s.now()
		s.exports[id] = &export{ID: id, Date: date, Started: now, Ready: now.Add(time.Duration(seconds) * time.Second), Rows: 1000 + s.next}
		if key != "" {
			s.byKey[key] = id
		}
	}
	w.Header().Set("Location", "/exports/"+id)
	writeJSON(w, http.StatusAccepted, map[string]any{"export": id, "state": "running", "status_url": "/exports/" + id})
}

// status answers 202 while the export runs and 200 with its result after.
func (s *service) status(w http.ResponseWriter, id string) {
	s.mu.Lock()
	e, ok := s.exports[id]
	var copyOf export
	if ok {
		copyOf = *e
	}
	s.mu.Unlock()
	if !ok {
		problem(w, http.StatusNotFound, fmt.Sprintf("no export %q", id))
		return
	}
	if left := copyOf.Ready.Sub(s.now()); left > 0 {
		writeJSON(w, http.StatusAccepted, map[string]any{"export": id, "state": "running", "seconds_left": int(left.Seconds() + 0.999)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"export": id, "date": copyOf.Date, "rows": copyOf.Rows, "state": "done",
		"took_seconds": copyOf.Ready.Sub(copyOf.Started).Seconds()})
}

func problem(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
