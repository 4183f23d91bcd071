package bigquery_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	bqapi "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/option"

	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/bigquery"
	"github.com/pipelinehq/pipeline/steps/bigquery/bigquerytest"
)

const project = "my-project"

func input(attempt int) steps.Input {
	return steps.Input{
		RunID: "daily@2026-11-23", Pipeline: "daily", Step: "merge",
		Date:       time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		Params:     map[string]string{"table": "sales", "who": "O'Brien"},
		Generation: 1, Attempt: attempt, MaxAttempts: 3,
	}
}

// newStep builds a bigquery.query step talking to a fresh stand-in whose
// jobs are done on their doneAfter-th get.
func newStep(t *testing.T, doneAfter int, extra map[string]any) (steps.AsyncStep, *bigquerytest.Server) {
	t.Helper()
	srv := bigquerytest.New(doneAfter)
	t.Cleanup(srv.Close)
	settings := map[string]any{
		"project":  project,
		"location": "EU",
		"query":    "MERGE ds.{{.Params.table}} T USING ds.staging S ON T.id = S.id AND S.day = DATE {{sqlstring .Date}} -- {{sqlstring .Params.who}}",
		"labels":   map[string]any{"team": "data"},
	}
	for k, v := range extra {
		settings[k] = v
	}
	st, err := bigquery.Factory(option.WithEndpoint(srv.Endpoint()), option.WithoutAuthentication())(settings)
	if err != nil {
		t.Fatal(err)
	}
	return st.(steps.AsyncStep), srv
}

// Start inserts one query job under the attempt's ID with the templated
// query; checks follow it until it is done; the output reports the job.
func TestStartAndCheckUntilDone(t *testing.T) {
	st, srv := newStep(t, 3, map[string]any{"check_interval": "5m", "destination_table": "ds.out_{{.Key}}", "write_disposition": "WRITE_TRUNCATE"})
	in := input(1)
	poll, err := st.Start(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	id := bigquery.JobID(bigquery.DefaultJobPrefix, in)
	if poll.Done || poll.After != 5*time.Minute || !strings.Contains(poll.Link, "j=bq%3AEU%3A"+id) {
		t.Fatalf("start poll %+v", poll)
	}
	jobs := srv.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
	j := jobs[0]
	q := j.Configuration.Query
	if j.JobReference.JobId != id || j.JobReference.Location != "EU" ||
		q.Query != `MERGE ds.sales T USING ds.staging S ON T.id = S.id AND S.day = DATE '2026-11-23' -- 'O\'Brien'` ||
		q.UseLegacySql == nil || *q.UseLegacySql || q.WriteDisposition != "WRITE_TRUNCATE" ||
		q.DestinationTable.ProjectId != project || q.DestinationTable.DatasetId != "ds" || q.DestinationTable.TableId != "out_2026-11-23" {
		b, _ := json.Marshal(j)
		t.Fatalf("inserted job %s", b)
	}
	if l := j.Configuration.Labels; l["team"] != "data" || l["pipeline"] != "daily" || l["pipeline-step"] != "merge" {
		t.Fatalf("labels %v", l)
	}
	state := poll.State
	for n := 1; ; n++ {
		poll, err = st.Check(t.Context(), in, state)
		if err != nil {
			t.Fatal(err)
		}
		if poll.Done {
			if n != 3 {
				t.Fatalf("done at check %d, want 3", n)
			}
			break
		}
		state = poll.State
	}
	var out bigquery.Output
	if err := json.Unmarshal(poll.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.JobID != id || out.Location != "EU" || out.Project != project || out.BytesProcessed != 1<<20 ||
		out.AffectedRows != 42 || out.InsertedRows != 21 || out.UpdatedRows != 21 || out.StatementType != "MERGE" ||
		out.DestinationTable != project+".ds.out_2026-11-23" || !strings.HasPrefix(out.Link, "https://console.cloud.google.com/bigquery?") {
		t.Fatalf("output %s", poll.Output)
	}
	if ins, dup, gets, _ := srv.Counts(); ins != 1 || dup != 0 || gets != 3 {
		t.Fatalf("inserts %d refused %d gets %d", ins, dup, gets)
	}
}

// A second start of the same attempt is refused by BigQuery (409) and the
// existing job is adopted: one job, the same state.
func TestDuplicateStartAdoptsTheJob(t *testing.T) {
	st, srv := newStep(t, 2, nil)
	first, err := st.Start(t.Context(), input(1))
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.Start(t.Context(), input(1))
	if err != nil {
		t.Fatalf("duplicate start: %v", err)
	}
	if string(first.State) != string(again.State) || again.Done {
		t.Fatalf("states %s and %s", first.State, again.State)
	}
	if ins, dup, _, _ := srv.Counts(); ins != 1 || dup != 1 {
		t.Fatalf("inserts %d refused %d, want 1 1", ins, dup)
	}
}

// A start whose reply is lost after BigQuery created the job fails
// transiently; the next attempt finds the job and adopts it instead of
// running the query again.
func TestRetryAfterALostReplyAdoptsTheEarlierJob(t *testing.T) {
	st, srv := newStep(t, 5, nil)
	srv.Inject("insert", bigquerytest.Fault{Status: 503, Reason: "backendError", AfterEffect: true})
	_, err := st.Start(t.Context(), input(1))
	if err == nil || steps.IsPermanent(err) {
		t.Fatalf("lost reply: %v, want a transient error", err)
	}
	poll, err := st.Start(t.Context(), input(2))
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		JobID string `json:"job_id"`
	}
	_ = json.Unmarshal(poll.State, &state)
	if state.JobID != bigquery.JobID(bigquery.DefaultJobPrefix, input(1)) {
		t.Fatalf("attempt 2 waits on %q, want attempt 1's job", state.JobID)
	}
	if ins, _, _, _ := srv.Counts(); ins != 1 {
		t.Fatalf("%d jobs inserted, want 1", ins)
	}
}

// An earlier attempt's job that failed is not adopted: the retry runs the
// query as a job of its own.
func TestRetryDoesNotAdoptAFailedJob(t *testing.T) {
	st, srv := newStep(t, 1, nil)
	srv.FailJobs(func(id string) *bqapi.ErrorProto {
		if strings.Contains(id, "_a1_") {
			return &bqapi.ErrorProto{Reason: "backendError", Message: "try again"}
		}
		return nil
	})
	p1, err := st.Start(t.Context(), input(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Check(t.Context(), input(1), p1.State); !steps.IsPermanent(err) {
		t.Fatalf("failed job: %v", err)
	}
	p2, err := st.Start(t.Context(), input(2))
	if err != nil {
		t.Fatal(err)
	}
	if p2.State == nil || string(p2.State) == string(p1.State) {
		t.Fatalf("attempt 2 state %s", p2.State)
	}
	if ins, _, _, _ := srv.Counts(); ins != 2 {
		t.Fatalf("%d jobs inserted, want 2", ins)
	}
}

// A start interrupted after BigQuery created the job (the reply never came)
// and repeated for the same attempt adopts the job.
func TestStartInterruptedThenRepeated(t *testing.T) {
	st, srv := newStep(t, 5, nil)
	created, release := srv.HoldNextInsert()
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := st.Start(ctx, input(1))
		errc <- err
	}()
	<-created
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the interrupted start succeeded")
	}
	poll, err := st.Start(t.Context(), input(1))
	if err != nil || poll.Done {
		t.Fatalf("repeated start: %+v, %v", poll, err)
	}
	if ins, dup, _, _ := srv.Counts(); ins != 1 || dup != 1 {
		t.Fatalf("inserts %d refused %d, want 1 1", ins, dup)
	}
}

// A job that ends with an errorResult fails the step for good, with
// BigQuery's reason, message and location.
func TestFailedJobIsPermanent(t *testing.T) {
	st, srv := newStep(t, 1, nil)
	srv.FailJobs(func(string) *bqapi.ErrorProto {
		return &bqapi.ErrorProto{Reason: "invalidQuery", Message: "Unrecognized name: idd at [1:40]", Location: "query"}
	})
	poll, err := st.Start(t.Context(), input(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Check(t.Context(), input(1), poll.State)
	if !steps.IsPermanent(err) || !strings.Contains(err.Error(), "invalidQuery: Unrecognized name: idd at [1:40] (at query)") {
		t.Fatalf("check of a failed job: %v", err)
	}
}

// 5xx, 429 and the rate-limit reasons are transient (with the Retry-After
// asked for); other 4xx are permanent.
func TestTransientAndPermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		op        string
		fault     bigquerytest.Fault
		permanent bool
		after     time.Duration
	}{
		{"get 503 with Retry-After", "get", bigquerytest.Fault{Status: 503, Reason: "backendError", RetryAfter: 7}, false, 7 * time.Second},
		{"get 500", "get", bigquerytest.Fault{Status: 500, Reason: "internalError"}, false, 0},
		{"get 429", "get", bigquerytest.Fault{Status: 429, Reason: "rateLimitExceeded", RetryAfter: 30}, false, 30 * time.Second},
		{"get 403 rateLimitExceeded", "get", bigquerytest.Fault{Status: 403, Reason: "rateLimitExceeded"}, false, 0},
		{"get 403 accessDenied", "get", bigquerytest.Fault{Status: 403, Reason: "accessDenied"}, true, 0},
		{"insert 400 invalidQuery", "insert", bigquerytest.Fault{Status: 400, Reason: "invalidQuery"}, true, 0},
		{"insert 503", "insert", bigquerytest.Fault{Status: 503, Reason: "backendError"}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, srv := newStep(t, 5, nil)
			var err error
			if tc.op == "insert" {
				srv.Inject("insert", tc.fault)
				_, err = st.Start(t.Context(), input(1))
			} else {
				poll, serr := st.Start(t.Context(), input(1))
				if serr != nil {
					t.Fatal(serr)
				}
				srv.Inject("get", tc.fault)
				_, err = st.Check(t.Context(), input(1), poll.State)
			}
			if err == nil || steps.IsPermanent(err) != tc.permanent {
				t.Fatalf("err = %v, permanent %v, want %v", err, steps.IsPermanent(err), tc.permanent)
			}
			after, ok := steps.RetryAfterOf(err)
			if tc.after > 0 && (!ok || after != tc.after) {
				t.Fatalf("retry after %s (%v), want %s", after, ok, tc.after)
			}
			if tc.after == 0 && ok {
				t.Fatalf("retry after %s, want none", after)
			}
		})
	}
}

// A job that vanished (404) fails the check for good, naming it.
func TestCheckOfAMissingJob(t *testing.T) {
	st, _ := newStep(t, 5, nil)
	_, err := st.Check(t.Context(), input(1), json.RawMessage(`{"project":"my-project","location":"EU","job_id":"gone"}`))
	if !steps.IsPermanent(err) || !strings.Contains(err.Error(), "get job gone") {
		t.Fatalf("err = %v", err)
	}
	_, err = st.Check(t.Context(), input(1), json.RawMessage(`{}`))
	if !steps.IsPermanent(err) || !strings.Contains(err.Error(), "names no job") {
		t.Fatalf("empty state: %v", err)
	}
}

// Cancel calls jobs.cancel for the waiting job.
func TestCancelStopsTheJob(t *testing.T) {
	st, srv := newStep(t, 5, nil)
	poll, err := st.Start(t.Context(), input(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.(steps.Canceller).Cancel(t.Context(), input(1), poll.State); err != nil {
		t.Fatal(err)
	}
	id := bigquery.JobID(bigquery.DefaultJobPrefix, input(1))
	if state, reason := srv.State(project, id); state != "DONE" || reason != "stopped" {
		t.Fatalf("job %s after cancel: %s %s", id, state, reason)
	}
	if _, _, _, cancels := srv.Counts(); cancels != 1 {
		t.Fatalf("%d cancels", cancels)
	}
	srv.Inject("cancel", bigquerytest.Fault{Status: 500, Reason: "backendError"})
	if err := st.(steps.Canceller).Cancel(t.Context(), input(1), poll.State); err == nil {
		t.Fatal("a failed cancel reported success")
	}
}

// A missing param fails the start for good, before anything is inserted.
func TestMissingParamIsPermanent(t *testing.T) {
	st, srv := newStep(t, 1, map[string]any{"query": "SELECT * FROM {{.Params.nope}}"})
	_, err := st.Start(t.Context(), input(1))
	if !steps.IsPermanent(err) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
	if ins, _, _, _ := srv.Counts(); ins != 0 {
		t.Fatalf("%d jobs inserted", ins)
	}
}

// Run refuses: the kind is asynchronous only.
func TestRunRefuses(t *testing.T) {
	st, _ := newStep(t, 1, nil)
	if _, err := st.Run(t.Context(), input(1)); !steps.IsPermanent(err) {
		t.Fatalf("run: %v", err)
	}
}

// A job ID taken by a job of another query (another deployment with the
// same job_prefix, a ledger reset) is not adopted: the start fails for
// good, saying how to tell the deployments apart.
func TestStartRefusesAnotherQuerysJob(t *testing.T) {
	st, srv := newStep(t, 5, nil)
	if _, err := st.Start(t.Context(), input(1)); err != nil {
		t.Fatal(err)
	}
	other, err := bigquery.Factory(option.WithEndpoint(srv.Endpoint()), option.WithoutAuthentication())(map[string]any{
		"project": project, "location": "EU", "query": "DELETE FROM ds.sales WHERE TRUE",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.(steps.AsyncStep).Start(t.Context(), input(1))
	if !steps.IsPermanent(err) || !strings.Contains(err.Error(), "with another query") || !strings.Contains(err.Error(), "job_prefix") {
		t.Fatalf("start over another query's job: %v", err)
	}
	// A retry does not adopt the other query's job of attempt 1 either.
	if _, err := other.(steps.AsyncStep).Start(t.Context(), input(2)); err != nil {
		t.Fatal(err)
	}
	if ins, dup, _, _ := srv.Counts(); ins != 2 || dup != 1 {
		t.Fatalf("inserts %d refused %d, want 2 1", ins, dup)
	}
}
