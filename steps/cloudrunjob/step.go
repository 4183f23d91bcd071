package cloudrunjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pipelinehq/pipeline/steps"
)

// adoptScan bounds how many of the job's most recent executions Start looks
// through for one that carries its key.
const adoptScan = 100

// Step is one step of kind `cloudrun.job`.
//
//   - Start looks through the job's most recent executions (ListExecutions)
//     for one whose environment carries this step's execution key (run,
//     step and generation, in PIPELINE_EXECUTION_KEY) and adopts it (done
//     or failed at once if it has finished);
//     otherwise it runs the job (RunJob) with the overrides and keeps the
//     execution's name, named in the operation's metadata.
//   - Each check reads the execution (GetExecution): running is pending;
//     succeeded is done, with the output {"execution", "task_count",
//     "succeeded", "failed", "cancelled", "retried", "logs",
//     "completed_at"}; failed or cancelled fails the step with the
//     execution's condition message and the logs link.
//   - Cancel (run cancelled, step timed out, forced re-run) cancels the
//     execution (CancelExecution); one already finished or gone is fine.
//
// API errors InvalidArgument, NotFound, FailedPrecondition,
// PermissionDenied, Unauthenticated, AlreadyExists, OutOfRange and
// Unimplemented are permanent; the others (Unavailable, ResourceExhausted, DeadlineExceeded,
// Aborted, Internal, ...) are transient, with the retry delay the API asks
// for, if any.
//
// RunJob takes no client-chosen ID, so the key in the environment is what
// makes a start repeated for the same generation (a crash after RunJob, a
// lost reply, a retried attempt) adopt the execution instead of running the
// job again. The window that remains: the list is eventually consistent, so
// a start repeated within moments of the first may not see it yet, and an
// execution older than the job's last 100 is not found. The key names the
// run in one ledger (Input.NamespaceTag): deployments sharing a job do not
// adopt each other's executions. Adoption
// relies on the execution's template carrying the overridden environment,
// as the API reports executions.
type Step struct {
	clients   *Clients
	project   string
	region    string
	job       string // projects/P/locations/R/jobs/J
	container string
	args      []*template.Template
	env       []namedTemplate
	taskCount int32
	timeout   time.Duration
	interval  time.Duration
}

var (
	_ steps.AsyncStep = (*Step)(nil)
	_ steps.Canceller = (*Step)(nil)
)

// state is what a waiting step keeps: the execution's full name.
type state struct {
	Execution string `json:"execution"`
}

// output is the output of a succeeded step.
type output struct {
	Execution   string `json:"execution"`
	TaskCount   int32  `json:"task_count"`
	Succeeded   int32  `json:"succeeded"`
	Failed      int32  `json:"failed"`
	Cancelled   int32  `json:"cancelled"`
	Retried     int32  `json:"retried"`
	Logs        string `json:"logs"`
	CompletedAt string `json:"completed_at,omitempty"`
}

// templateData is what the args and env templates see (as the http kind's).
type templateData struct {
	RunID    string
	Pipeline string
	Step     string
	Date     string
	Attempt  int
	Params   map[string]string
}

// Key is the execution key of in: the same for every attempt of one
// generation of a step of a run in one ledger (RUN/STEP/gN/NAMESPACETAG;
// without the tag where the namespace is unknown).
func Key(in steps.Input) string {
	k := fmt.Sprintf("%s/%s/g%d", in.RunID, in.Step, in.Generation)
	if tag := in.NamespaceTag(); tag != "" {
		k += "/" + tag
	}
	return k
}

// Run is not used for an asynchronous step; it refuses, saying so.
func (st *Step) Run(context.Context, steps.Input) (json.RawMessage, error) {
	return nil, steps.Permanent(errors.New("cloudrun.job: an asynchronous step must be run by an orchestrator that supports asynchronous steps"))
}

// Start adopts the execution of this generation if there is one, or runs
// the job.
func (st *Step) Start(ctx context.Context, in steps.Input) (steps.Poll, error) {
	key := Key(in)
	ov, err := st.overrides(in, key)
	if err != nil {
		return steps.Poll{}, err
	}
	jobs, execs, err := st.clients.get(ctx)
	if err != nil {
		return steps.Poll{}, err
	}
	ex, err := st.find(ctx, execs, key)
	if err != nil {
		return steps.Poll{}, err
	}
	if ex != nil {
		return st.judged(ex)
	}
	op, err := jobs.RunJob(ctx, &runpb.RunJobRequest{Name: st.job, Overrides: ov})
	if err != nil {
		return steps.Poll{}, classify(fmt.Sprintf("run job %s", st.job), err)
	}
	if ex, err = op.Metadata(); err != nil || ex.GetName() == "" {
		// The operation does not name the execution: look for it by key.
		if ex, err = st.find(ctx, execs, key); err != nil {
			return steps.Poll{}, err
		}
		if ex == nil {
			return steps.Poll{}, fmt.Errorf("cloudrun.job: ran %s (operation %s) but cannot find its execution yet; the retry adopts it", st.job, op.Name())
		}
	}
	return st.pending(ex), nil
}

// Check reads the execution the state names.
func (st *Step) Check(ctx context.Context, _ steps.Input, raw json.RawMessage) (steps.Poll, error) {
	name, err := executionOf(raw)
	if err != nil {
		return steps.Poll{}, err
	}
	_, execs, err := st.clients.get(ctx)
	if err != nil {
		return steps.Poll{}, err
	}
	ex, err := execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: name})
	if err != nil {
		return steps.Poll{}, classify("get execution "+name, err)
	}
	return st.judged(ex)
}

// judged is the Poll (or the failure) of what ex's record says.
func (st *Step) judged(ex *runpb.Execution) (steps.Poll, error) {
	done, out, err := judge(ex)
	switch {
	case err != nil:
		return steps.Poll{}, err
	case done:
		return steps.Poll{Done: true, Output: out}, nil
	default:
		return st.pending(ex), nil
	}
}

// Cancel cancels the execution the state names. An execution that has
// finished or no longer exists needs nothing.
func (st *Step) Cancel(ctx context.Context, _ steps.Input, raw json.RawMessage) error {
	name, err := executionOf(raw)
	if err != nil {
		return err
	}
	_, execs, err := st.clients.get(ctx)
	if err != nil {
		return err
	}
	if _, err := execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: name}); err != nil {
		if finished(err) {
			return nil
		}
		return classify("cancel execution "+name, err)
	}
	return nil
}

func executionOf(raw json.RawMessage) (string, error) {
	var s state
	if err := json.Unmarshal(raw, &s); err != nil || s.Execution == "" {
		return "", steps.Permanent(fmt.Errorf("cloudrun.job: state %s names no execution", raw))
	}
	return s.Execution, nil
}

// pending is the Poll of an execution still running.
func (st *Step) pending(ex *runpb.Execution) steps.Poll {
	b, _ := json.Marshal(state{Execution: ex.GetName()})
	return steps.Poll{State: b, After: st.interval, Link: logsLink(ex)}
}

// find returns the most recent of the job's last adoptScan executions
// whose containers' environment carries key, or nil.
func (st *Step) find(ctx context.Context, execs *run.ExecutionsClient, key string) (*runpb.Execution, error) {
	it := execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: st.job, PageSize: 50})
	for n := 0; n < adoptScan; n++ {
		ex, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil, nil
		}
		if err != nil {
			return nil, classify(fmt.Sprintf("list executions of %s (looking for one already started with %s=%s)", st.job, EnvKey, key), err)
		}
		if carries(ex, key) {
			return ex, nil
		}
	}
	return nil, nil
}

// carries reports whether ex's template sets EnvKey to key.
func carries(ex *runpb.Execution, key string) bool {
	for _, c := range ex.GetTemplate().GetContainers() {
		for _, e := range c.GetEnv() {
			if e.GetName() == EnvKey && e.GetValue() == key {
				return true
			}
		}
	}
	return false
}

// overrides expands the args and env of in into the RunJob overrides.
func (st *Step) overrides(in steps.Input, key string) (*runpb.RunJobRequest_Overrides, error) {
	data := templateData{RunID: in.RunID, Pipeline: in.Pipeline, Step: in.Step, Date: in.DateString(), Attempt: in.Attempt, Params: in.Params}
	if data.Params == nil {
		data.Params = map[string]string{}
	}
	expand := func(t *template.Template) (string, error) {
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return "", steps.Permanent(fmt.Errorf("cloudrun.job: expanding %s: %w", t.Name(), err))
		}
		return b.String(), nil
	}
	co := &runpb.RunJobRequest_Overrides_ContainerOverride{Name: st.container}
	for _, t := range st.args {
		a, err := expand(t)
		if err != nil {
			return nil, err
		}
		co.Args = append(co.Args, a)
	}
	co.ClearArgs = st.args != nil && len(st.args) == 0
	for _, e := range st.env {
		v, err := expand(e.value)
		if err != nil {
			return nil, err
		}
		co.Env = append(co.Env, &runpb.EnvVar{Name: e.name, Values: &runpb.EnvVar_Value{Value: v}})
	}
	params, _ := json.Marshal(data.Params)
	for _, kv := range [][2]string{{EnvRunID, in.RunID}, {EnvStep, in.Step}, {EnvDate, data.Date}, {EnvParams, string(params)}, {EnvKey, key}} {
		co.Env = append(co.Env, &runpb.EnvVar{Name: kv[0], Values: &runpb.EnvVar_Value{Value: kv[1]}})
	}
	ov := &runpb.RunJobRequest_Overrides{ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{co}, TaskCount: st.taskCount}
	if st.timeout > 0 {
		ov.Timeout = durationpb.New(st.timeout)
	}
	return ov, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
