// Package bigquerytest is an in-memory stand-in of the BigQuery v2 jobs REST
// API (jobs.insert, jobs.get, jobs.cancel) for tests of the bigquery.query
// step kind: it serves the same paths and JSON as BigQuery, refuses a
// repeated job ID with 409 Already Exists, finishes a job after a number of
// gets (or fails it with an errorResult), and can inject the faults a test
// needs (5xx/429 with Retry-After, a lost reply, a held reply). It listens
// on 127.0.0.1 only.
package bigquerytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"

	bqapi "google.golang.org/api/bigquery/v2"
)

// Server is the stand-in. Set its fields before the first request; use
// its methods to read what happened.
type Server struct {
	srv *httptest.Server

	mu   sync.Mutex
	jobs map[string]*job // by project + "/" + job ID
	// order lists job keys in insert order.
	order []string
	// doneAfter is the number of gets after which a job is DONE.
	doneAfter int
	// outcome decides each job's end: nil error proto = success.
	fail func(jobID string) *bqapi.ErrorProto
	// stats are given to a successful job.
	bytes, affected int64
	// faults queued per operation ("insert", "get", "cancel").
	faults map[string][]Fault
	// hold, when set, makes the next insert create its job and then wait
	// for hold to close (or the request to end) before answering.
	hold    chan struct{}
	held    chan string
	inserts int // jobs created
	refused int // inserts refused as duplicates (409)
	gets    int
	cancels int
}

type job struct {
	j    *bqapi.Job
	gets int
}

// Fault is an injected answer to one request.
type Fault struct {
	// Status and Reason make an error answer (Google's JSON error shape);
	// RetryAfter, if set, is sent as the Retry-After header (seconds).
	Status     int
	Reason     string
	RetryAfter int
	// AfterEffect applies the operation first and then answers with the
	// error: a reply lost after the work was done.
	AfterEffect bool
}

// New starts a stand-in on 127.0.0.1 whose jobs are DONE on their
// doneAfter-th get (at the first get when doneAfter <= 1).
func New(doneAfter int) *Server {
	s := &Server{jobs: map[string]*job{}, doneAfter: doneAfter, faults: map[string][]Fault{}, bytes: 1 << 20, affected: 42}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /bigquery/v2/projects/{project}/jobs", s.insert)
	mux.HandleFunc("GET /bigquery/v2/projects/{project}/jobs/{job}", s.get)
	mux.HandleFunc("POST /bigquery/v2/projects/{project}/jobs/{job}/cancel", s.cancel)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "notFound", "bigquerytest: no such method "+r.Method+" "+r.URL.Path, 0)
	})
	s.srv = httptest.NewServer(mux)
	return s
}

// Endpoint is the base path to give the client (option.WithEndpoint).
func (s *Server) Endpoint() string { return s.srv.URL + "/bigquery/v2/" }

// Close stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
	s.mu.Unlock()
	s.srv.Close()
}

// FailJobs makes jobs end with the error f returns for their ID (nil:
// success).
func (s *Server) FailJobs(f func(jobID string) *bqapi.ErrorProto) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

// SetStats sets the bytes processed and DML affected rows of successful jobs.
func (s *Server) SetStats(bytes, affected int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes, s.affected = bytes, affected
}

// Inject queues faults for the next requests of op: "insert", "get" or
// "cancel".
func (s *Server) Inject(op string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = append(s.faults[op], faults...)
}

// HoldNextInsert makes the next insert create its job and then not answer
// until release is called or the request ends (a reply lost in a crash).
// The returned channel receives the job ID once the job exists.
func (s *Server) HoldNextInsert() (created <-chan string, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hold, held := make(chan struct{}), make(chan string, 1)
	s.hold, s.held = hold, held
	var once sync.Once
	return held, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.hold == hold {
				s.hold = nil
			}
			close(hold)
		})
	}
}

// Counts reports the jobs created, the inserts refused as duplicates, the
// gets and the cancels served.
func (s *Server) Counts() (inserts, refused, gets, cancels int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inserts, s.refused, s.gets, s.cancels
}

// Jobs returns a copy of every job, in insert order.
func (s *Server) Jobs() []*bqapi.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*bqapi.Job, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, clone(s.jobs[k].j))
	}
	return out
}

// takeFault pops the next fault of op. Called with mu held.
func (s *Server) takeFault(op string) (Fault, bool) {
	q := s.faults[op]
	if len(q) == 0 {
		return Fault{}, false
	}
	s.faults[op] = q[1:]
	return q[0], true
}

func (s *Server) insert(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	var in bqapi.Job
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "bigquerytest: bad job JSON: "+err.Error(), 0)
		return
	}
	if in.JobReference == nil || in.JobReference.JobId == "" || in.Configuration == nil || in.Configuration.Query == nil || in.Configuration.Query.Query == "" {
		writeError(w, http.StatusBadRequest, "invalid", "bigquerytest: a query job with a jobReference.jobId is required", 0)
		return
	}
	s.mu.Lock()
	f, faulty := s.takeFault("insert")
	if faulty && !f.AfterEffect {
		s.mu.Unlock()
		writeError(w, f.Status, f.Reason, "bigquerytest: injected fault", f.RetryAfter)
		return
	}
	key := project + "/" + in.JobReference.JobId
	if _, dup := s.jobs[key]; dup {
		s.refused++
		s.mu.Unlock()
		loc := in.JobReference.Location
		writeError(w, http.StatusConflict, "duplicate", fmt.Sprintf("Already Exists: Job %s:%s.%s", project, loc, in.JobReference.JobId), 0)
		return
	}
	j := clone(&in)
	j.Id = project + ":" + in.JobReference.Location + "." + in.JobReference.JobId
	j.JobReference.ProjectId = project
	j.Kind = "bigquery#job"
	j.Status = &bqapi.JobStatus{State: "RUNNING"}
	j.Statistics = &bqapi.JobStatistics{CreationTime: 1}
	s.jobs[key] = &job{j: j}
	s.order = append(s.order, key)
	s.inserts++
	hold, held := s.hold, s.held
	s.hold, s.held = nil, nil
	reply := clone(j)
	s.mu.Unlock()
	if hold != nil {
		held <- in.JobReference.JobId
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if faulty {
		writeError(w, f.Status, f.Reason, "bigquerytest: injected fault after the insert", f.RetryAfter)
		return
	}
	writeJSON(w, reply)
}

// lookup finds the job of the request, answering 404 (as BigQuery does,
// also for a location that is not the job's) when there is none.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*job, bool) {
	project, id := r.PathValue("project"), r.PathValue("job")
	j, ok := s.jobs[project+"/"+id]
	loc := r.URL.Query().Get("location")
	if !ok || (loc != "" && loc != j.j.JobReference.Location) {
		writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("Not found: Job %s:%s.%s", project, loc, id), 0)
		return nil, false
	}
	return j, true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if f, ok := s.takeFault("get"); ok {
		s.mu.Unlock()
		writeError(w, f.Status, f.Reason, "bigquerytest: injected fault", f.RetryAfter)
		return
	}
	j, ok := s.lookup(w, r)
	if !ok {
		s.mu.Unlock()
		return
	}
	s.gets++
	j.gets++
	if j.j.Status.State != "DONE" && j.gets >= s.doneAfter {
		s.finish(j)
	}
	reply := clone(j.j)
	s.mu.Unlock()
	writeJSON(w, reply)
}

// finish ends j as its outcome says. Called with mu held.
func (s *Server) finish(j *job) {
	j.j.Status.State = "DONE"
	if s.fail != nil {
		if e := s.fail(j.j.JobReference.JobId); e != nil {
			j.j.Status.ErrorResult = e
			j.j.Status.Errors = []*bqapi.ErrorProto{e}
			return
		}
	}
	j.j.Statistics.TotalBytesProcessed = s.bytes
	j.j.Statistics.Query = &bqapi.JobStatistics2{
		TotalBytesProcessed: s.bytes, NumDmlAffectedRows: s.affected, StatementType: "MERGE",
		DmlStats: &bqapi.DmlStatistics{InsertedRowCount: s.affected / 2, UpdatedRowCount: s.affected - s.affected/2},
	}
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if f, ok := s.takeFault("cancel"); ok {
		s.mu.Unlock()
		writeError(w, f.Status, f.Reason, "bigquerytest: injected fault", f.RetryAfter)
		return
	}
	j, ok := s.lookup(w, r)
	if !ok {
		s.mu.Unlock()
		return
	}
	s.cancels++
	if j.j.Status.State != "DONE" {
		j.j.Status.State = "DONE"
		e := &bqapi.ErrorProto{Reason: "stopped", Message: "Job execution was cancelled: User requested cancellation"}
		j.j.Status.ErrorResult, j.j.Status.Errors = e, []*bqapi.ErrorProto{e}
	}
	reply := &bqapi.JobCancelResponse{Kind: "bigquery#jobCancelResponse", Job: clone(j.j)}
	s.mu.Unlock()
	writeJSON(w, reply)
}

// State reports the state of job id of project ("" when there is none)
// and its error reason.
func (s *Server) State(project, id string) (state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[project+"/"+id]
	if !ok {
		return "", ""
	}
	if e := j.j.Status.ErrorResult; e != nil {
		reason = e.Reason
	}
	return j.j.Status.State, reason
}

// JobIDs lists the IDs of every job, sorted.
func (s *Server) JobIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, j.j.JobReference.JobId)
	}
	sort.Strings(out)
	return out
}

func clone(j *bqapi.Job) *bqapi.Job {
	b, err := json.Marshal(j)
	if err != nil {
		panic(fmt.Sprintf("bigquerytest: marshal job: %v", err))
	}
	var out bqapi.Job
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("bigquerytest: unmarshal job: %v", err))
	}
	return &out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in Google's JSON error shape.
func writeError(w http.ResponseWriter, code int, reason, msg string, retryAfter int) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"errors": []map[string]string{{"reason": reason, "message": msg, "domain": "global"}},
	}})
}
