package bigquery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	bqapi "google.golang.org/api/bigquery/v2"

	"github.com/pipelinehq/pipeline/steps"
)

// maxAdoptLookback bounds how many earlier attempts Start looks for.
const maxAdoptLookback = 20

// queryStep is one step of the kind, configured.
type queryStep struct {
	*config
	svc *lazyService
}

var (
	_ steps.AsyncStep = (*queryStep)(nil)
	_ steps.Canceller = (*queryStep)(nil)
)

// jobState is what a waiting step keeps in the ledger: enough to find the
// job again.
type jobState struct {
	Project  string `json:"project"`
	Location string `json:"location"`
	JobID    string `json:"job_id"`
}

// Output is the output of a finished query job.
type Output struct {
	JobID            string `json:"job_id"`
	Project          string `json:"project"`
	Location         string `json:"location"`
	StatementType    string `json:"statement_type,omitempty"`
	BytesProcessed   int64  `json:"bytes_processed"`
	AffectedRows     int64  `json:"affected_rows"`
	InsertedRows     int64  `json:"inserted_rows,omitempty"`
	UpdatedRows      int64  `json:"updated_rows,omitempty"`
	DeletedRows      int64  `json:"deleted_rows,omitempty"`
	DestinationTable string `json:"destination_table,omitempty"`
	Link             string `json:"link"`
}

// templateData is what the query and destination_table templates see.
type templateData struct {
	RunID, Pipeline, Step, Key, Date string
	Attempt                          int
	Params                           map[string]string
}

// Run is not used for an asynchronous step; it refuses, saying so.
func (q *queryStep) Run(context.Context, steps.Input) (json.RawMessage, error) {
	return nil, steps.Permanent(errors.New(Kind + ": an asynchronous step must be run by an orchestrator that supports asynchronous steps"))
}

// Start inserts the attempt's query job under its deterministic ID. A job
// that already exists under that ID (a start repeated after a crash) is
// adopted, not run again; so is the job of an earlier attempt of the same
// generation that is running or succeeded (its start's reply was lost).
func (q *queryStep) Start(ctx context.Context, in steps.Input) (steps.Poll, error) {
	job, err := q.job(in)
	if err != nil {
		return steps.Poll{}, err
	}
	jobs, err := q.svc.jobs(ctx)
	if err != nil {
		return steps.Poll{}, err
	}
	prev, err := q.earlierJob(ctx, jobs, in, job)
	if err != nil {
		return steps.Poll{}, err
	}
	if prev != nil {
		return q.poll(prev)
	}
	id := job.JobReference.JobId
	got, err := jobs.Insert(q.project, job).Context(ctx).Do()
	if isDuplicate(err) {
		// Already Exists: this attempt's job was inserted before (a crash
		// or a lost reply); adopt it.
		got, err = jobs.Get(q.project, id).Location(q.location).Context(ctx).Do()
		if err != nil {
			return steps.Poll{}, classify(err, "get the existing job "+id)
		}
		if !sameQuery(got, job) {
			return steps.Poll{}, steps.Permanent(fmt.Errorf("%s: job %s already exists in project %s with another query: "+
				"another deployment uses the same job IDs, or this run's ledger was reset; give each deployment its own job_prefix", Kind, id, q.project))
		}
		return q.poll(got)
	}
	if err != nil {
		return steps.Poll{}, classify(err, "insert job "+id)
	}
	return q.poll(got)
}

// earlierJob looks for the job of an earlier attempt of this generation
// that is running or succeeded: an attempt whose start inserted the job but
// whose reply or record was lost is retried as a new attempt, and must not
// run the query again. Jobs that failed are not adopted (that attempt
// failed; this one runs the query afresh), nor jobs of another query.
func (q *queryStep) earlierJob(ctx context.Context, jobs *bqapi.JobsService, in steps.Input, job *bqapi.Job) (*bqapi.Job, error) {
	for a := in.Attempt - 1; a >= 1 && a >= in.Attempt-maxAdoptLookback; a-- {
		prev := in
		prev.Attempt = a
		id := JobID(q.prefix, prev)
		got, err := jobs.Get(q.project, id).Location(q.location).Context(ctx).Do()
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, classify(err, "look for the job of attempt "+fmt.Sprint(a)+" ("+id+")")
		}
		if got.Status != nil && got.Status.ErrorResult != nil || !sameQuery(got, job) {
			continue // that attempt failed, or the job is not this step's
		}
		return got, nil
	}
	return nil, nil
}

// Check gets the job and reports whether it is done.
func (q *queryStep) Check(ctx context.Context, _ steps.Input, state json.RawMessage) (steps.Poll, error) {
	st, err := readState(state)
	if err != nil {
		return steps.Poll{}, err
	}
	jobs, err := q.svc.jobs(ctx)
	if err != nil {
		return steps.Poll{}, err
	}
	got, err := jobs.Get(st.Project, st.JobID).Location(st.Location).Context(ctx).Do()
	if err != nil {
		return steps.Poll{}, classify(err, "get job "+st.JobID)
	}
	return q.poll(got)
}

// Cancel asks BigQuery to cancel the job (best effort: BigQuery may finish
// it anyway).
func (q *queryStep) Cancel(ctx context.Context, _ steps.Input, state json.RawMessage) error {
	st, err := readState(state)
	if err != nil {
		return err
	}
	jobs, err := q.svc.jobs(ctx)
	if err != nil {
		return err
	}
	if _, err := jobs.Cancel(st.Project, st.JobID).Location(st.Location).Context(ctx).Do(); err != nil {
		return classify(err, "cancel job "+st.JobID)
	}
	return nil
}

// sameQuery reports whether the existing job runs the query job would.
func sameQuery(existing, job *bqapi.Job) bool {
	c := existing.Configuration
	return c != nil && c.Query != nil && c.Query.Query == job.Configuration.Query.Query
}

func readState(state json.RawMessage) (jobState, error) {
	var st jobState
	if err := json.Unmarshal(state, &st); err != nil || st.Project == "" || st.JobID == "" {
		return st, steps.Permanent(fmt.Errorf("%s: the waiting state %s names no job", Kind, state))
	}
	return st, nil
}

// job is the query job of attempt in.
func (q *queryStep) job(in steps.Input) (*bqapi.Job, error) {
	data := templateData{
		RunID: in.RunID, Pipeline: in.Pipeline, Step: in.Step, Key: in.Key(),
		Date: in.DateString(), Attempt: in.Attempt, Params: in.Params,
	}
	if data.Params == nil {
		data.Params = map[string]string{}
	}
	var text strings.Builder
	if err := q.query.Execute(&text, data); err != nil {
		return nil, steps.Permanent(fmt.Errorf("%s: expanding the query: %w", Kind, err))
	}
	legacy := q.legacySQL
	qc := &bqapi.JobConfigurationQuery{Query: text.String(), UseLegacySql: &legacy, ForceSendFields: []string{"UseLegacySql"}}
	if q.destination != nil {
		var dest strings.Builder
		if err := q.destination.Execute(&dest, data); err != nil {
			return nil, steps.Permanent(fmt.Errorf("%s: expanding destination_table: %w", Kind, err))
		}
		ref, err := tableRef(dest.String(), q.project)
		if err != nil {
			return nil, steps.Permanent(fmt.Errorf("%s: destination_table %w", Kind, err))
		}
		qc.DestinationTable = &bqapi.TableReference{ProjectId: ref[0], DatasetId: ref[1], TableId: ref[2]}
		qc.WriteDisposition = q.writeDisposition
	}
	labels := map[string]string{"pipeline": labelValue(in.Pipeline), "pipeline-step": labelValue(in.Step)}
	for k, v := range q.labels {
		labels[k] = v
	}
	return &bqapi.Job{
		JobReference:  &bqapi.JobReference{ProjectId: q.project, Location: q.location, JobId: JobID(q.prefix, in)},
		Configuration: &bqapi.JobConfiguration{Query: qc, Labels: labels},
	}, nil
}

// poll maps a job to the step's answer: done (with the output), failed
// (permanent, with BigQuery's reason and message) or still running.
func (q *queryStep) poll(job *bqapi.Job) (steps.Poll, error) {
	ref := job.JobReference
	if ref == nil || ref.JobId == "" {
		return steps.Poll{}, fmt.Errorf("%s: BigQuery answered with a job that has no reference", Kind)
	}
	st := jobState{Project: ref.ProjectId, Location: ref.Location, JobID: ref.JobId}
	if st.Project == "" {
		st.Project = q.project
	}
	if st.Location == "" {
		st.Location = q.location
	}
	link := consoleLink(st)
	if job.Status == nil || job.Status.State != "DONE" {
		b, _ := json.Marshal(st)
		return steps.Poll{State: b, After: q.interval, Link: link}, nil
	}
	if e := job.Status.ErrorResult; e != nil {
		return steps.Poll{}, steps.Permanent(fmt.Errorf("%s: job %s failed: %s (%s)", Kind, st.JobID, describe(e, job.Status.Errors), link))
	}
	out := Output{JobID: st.JobID, Project: st.Project, Location: st.Location, Link: link}
	if s := job.Statistics; s != nil {
		out.BytesProcessed = s.TotalBytesProcessed
		if qs := s.Query; qs != nil {
			out.StatementType = qs.StatementType
			out.AffectedRows = qs.NumDmlAffectedRows
			if qs.TotalBytesProcessed > 0 {
				out.BytesProcessed = qs.TotalBytesProcessed
			}
			if d := qs.DmlStats; d != nil {
				out.InsertedRows, out.UpdatedRows, out.DeletedRows = d.InsertedRowCount, d.UpdatedRowCount, d.DeletedRowCount
			}
		}
	}
	if c := job.Configuration; c != nil && c.Query != nil && c.Query.DestinationTable != nil {
		t := c.Query.DestinationTable
		out.DestinationTable = t.ProjectId + "." + t.DatasetId + "." + t.TableId
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep the link's & readable
	if err := enc.Encode(out); err != nil {
		return steps.Poll{}, fmt.Errorf("%s: output of job %s: %w", Kind, st.JobID, err)
	}
	return steps.Poll{Done: true, Output: bytes.TrimSpace(b.Bytes()), Link: link}, nil
}

// describe renders a job's error: reason, message, location, and the
// other errors' messages.
func describe(e *bqapi.ErrorProto, all []*bqapi.ErrorProto) string {
	msg := e.Reason + ": " + e.Message
	if e.Location != "" {
		msg += " (at " + e.Location + ")"
	}
	for _, o := range all {
		if o != nil && o.Message != e.Message {
			msg += "; " + o.Message
		}
	}
	return msg
}

// consoleLink is the Cloud console page of the job.
func consoleLink(st jobState) string {
	v := url.Values{}
	v.Set("project", st.Project)
	v.Set("j", "bq:"+st.Location+":"+st.JobID)
	v.Set("page", "queryresults")
	return "https://console.cloud.google.com/bigquery?" + v.Encode()
}

// labelValue makes s a valid label value (lowercase letters, digits, _ and
// -, at most 63).
func labelValue(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if b.Len() >= 63 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
