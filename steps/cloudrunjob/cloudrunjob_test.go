package cloudrunjob_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/cloudrunjob"
	"github.com/pipelinehq/pipeline/steps/cloudrunjob/runtest"
)

var ctx = context.Background()

// settings are good settings for the job "load" of the stand-in.
func settings() map[string]any {
	return map[string]any{
		"project": "acme", "region": "europe-west1", "job": "load",
		"args":       []any{"--date={{.Date}}", "--target={{.Params.target}}"},
		"env":        map[string]any{"TARGET": "{{.Params.target}}", "MODE": "full"},
		"task_count": 4, "timeout": "2h", "check_interval": "5m",
	}
}

// input is attempt 1 of generation 1 of step load of a daily run.
func input() steps.Input {
	return steps.Input{
		RunID: "daily@2026-11-23", Pipeline: "daily", Step: "load", Date: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		Params: map[string]string{"target": "eu"}, Attempt: 1, MaxAttempts: 3, Generation: 1,
	}
}

// setup starts a stand-in with the job load (executions ending as o says)
// and builds a step of the kind with set.
func setup(t *testing.T, o runtest.Outcome, set map[string]any) (*runtest.Server, *cloudrunjob.Step) {
	t.Helper()
	srv := runtest.Start(t)
	srv.AddJob("acme", "europe-west1", "load", o)
	clients := cloudrunjob.NewClients(srv.ClientOptions()...)
	t.Cleanup(func() { _ = clients.Close() })
	reg := steps.NewRegistry()
	cloudrunjob.Register(reg, clients)
	st, err := reg.Build(cloudrunjob.Kind, set)
	if err != nil {
		t.Fatal(err)
	}
	return srv, st.(*cloudrunjob.Step)
}

func execution(t *testing.T, state json.RawMessage) string {
	t.Helper()
	var s struct{ Execution string }
	if err := json.Unmarshal(state, &s); err != nil || s.Execution == "" {
		t.Fatalf("state %s names no execution (%v)", state, err)
	}
	return s.Execution
}

func envOf(co *runpb.RunJobRequest_Overrides_ContainerOverride) map[string]string {
	m := map[string]string{}
	for _, e := range co.GetEnv() {
		m[e.GetName()] = e.GetValue()
	}
	return m
}

// Bad settings are refused with every problem named at once.
func TestSettingsNameEveryProblem(t *testing.T) {
	reg := steps.NewRegistry()
	cloudrunjob.Register(reg, cloudrunjob.NewClients())
	_, err := reg.Build(cloudrunjob.Kind, map[string]any{
		"project": "projects/acme", "region": "Europe West", "job": "jobs/load", "container": "Main_1",
		"args": []any{"{{.Date"}, "env": map[string]any{"1BAD": "x", "PIPELINE_DATE": "y"},
		"task_count": 0, "timeout": "200h", "check_interval": "soon", "retries": 3,
	})
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`project "projects/acme"`, `region "Europe West"`, `job "jobs/load"`, `container "Main_1"`,
		"args[0]: bad template", `env: "1BAD" is not a variable name`, "env: PIPELINE_DATE is set by the kind itself",
		"task_count 0 must be between 1 and 10000", "timeout 200h0m0s is longer than Cloud Run's task limit",
		`check_interval "soon" is not a positive duration`, `unknown setting "retries"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	_, err = reg.Build(cloudrunjob.Kind, nil)
	for _, want := range []string{"project is required", "region is required", "job is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no settings: error lacks %q: %v", want, err)
		}
	}
	if _, err := reg.Build(cloudrunjob.Kind, settings()); err != nil {
		t.Fatalf("good settings: %v", err)
	}
}

// Building steps and registering the kind need no credentials: the clients
// are created when a step first starts, and without credentials that start
// fails for good, saying what to do.
func TestClientsNeedCredentialsOnlyWhenUsed(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/missing.json")
	reg := steps.NewRegistry()
	cloudrunjob.Register(reg, cloudrunjob.NewClients())
	st, err := reg.Build(cloudrunjob.Kind, settings())
	if err != nil {
		t.Fatalf("building a step without credentials: %v", err)
	}
	_, err = st.(steps.AsyncStep).Start(ctx, input())
	if err == nil || !steps.IsPermanent(err) || !strings.Contains(err.Error(), "default credentials") {
		t.Fatalf("start without credentials: %v (permanent %v)", err, steps.IsPermanent(err))
	}
}

// Start runs the job once with the overrides: args and env expanded, the
// kind's own variables, task count and timeout; the step then waits on the
// execution, linking its logs.
func TestStartRunsTheJobWithOverrides(t *testing.T) {
	srv, st := setup(t, runtest.Outcome{Gets: 1}, settings())
	poll, err := st.Start(ctx, input())
	if err != nil {
		t.Fatal(err)
	}
	runs := srv.Runs()
	if len(runs) != 1 {
		t.Fatalf("%d RunJob calls, want 1", len(runs))
	}
	req := runs[0]
	if req.GetName() != "projects/acme/locations/europe-west1/jobs/load" {
		t.Fatalf("ran %s", req.GetName())
	}
	ov := req.GetOverrides()
	if ov.GetTaskCount() != 4 || ov.GetTimeout().AsDuration() != 2*time.Hour || len(ov.GetContainerOverrides()) != 1 {
		t.Fatalf("overrides %v", ov)
	}
	co := ov.GetContainerOverrides()[0]
	if strings.Join(co.GetArgs(), " ") != "--date=2026-11-23 --target=eu" || co.GetClearArgs() {
		t.Fatalf("args %q clear %v", co.GetArgs(), co.GetClearArgs())
	}
	env := envOf(co)
	want := map[string]string{
		"TARGET": "eu", "MODE": "full", "PIPELINE_RUN_ID": "daily@2026-11-23", "PIPELINE_STEP": "load",
		"PIPELINE_DATE": "2026-11-23", "PIPELINE_PARAMS": `{"target":"eu"}`, "PIPELINE_EXECUTION_KEY": "daily@2026-11-23/load/g1",
	}
	if fmt.Sprint(env) != fmt.Sprint(want) {
		t.Fatalf("env\n %v\nwant\n %v", env, want)
	}
	exs := srv.Executions()
	if poll.Done || execution(t, poll.State) != exs[0].GetName() || poll.After != 5*time.Minute || poll.Link != exs[0].GetLogUri() || poll.Link == "" {
		t.Fatalf("poll %+v (state %s), executions %v", poll, poll.State, exs)
	}
}

// A missing param fails the start for good, before anything runs.
func TestStartWithAMissingParamRunsNothing(t *testing.T) {
	srv, st := setup(t, runtest.Outcome{}, settings())
	in := input()
	in.Params = nil
	_, err := st.Start(ctx, in)
	if err == nil || !steps.IsPermanent(err) || !strings.Contains(err.Error(), "target") {
		t.Fatalf("start: %v", err)
	}
	if n := len(srv.Runs()); n != 0 {
		t.Fatalf("%d RunJob calls", n)
	}
}

// args: [] clears the job's args.
func TestEmptyArgsClearTheJobs(t *testing.T) {
	set := settings()
	set["args"] = []any{}
	srv, st := setup(t, runtest.Outcome{}, set)
	if _, err := st.Start(ctx, input()); err != nil {
		t.Fatal(err)
	}
	if co := srv.Runs()[0].GetOverrides().GetContainerOverrides()[0]; !co.GetClearArgs() || len(co.GetArgs()) != 0 {
		t.Fatalf("override %v", co)
	}
}

// Checks report pending until the execution completes, then its output.
func TestCheckUntilTheExecutionSucceeds(t *testing.T) {
	srv, st := setup(t, runtest.Outcome{Gets: 2}, settings())
	poll, err := st.Start(ctx, input())
	if err != nil {
		t.Fatal(err)
	}
	name := execution(t, poll.State)
	for n := 1; n <= 2; n++ {
		poll, err = st.Check(ctx, input(), poll.State)
		if err != nil || poll.Done || execution(t, poll.State) != name || poll.After != 5*time.Minute {
			t.Fatalf("check %d: %+v, %v", n, poll, err)
		}
	}
	poll, err = st.Check(ctx, input(), poll.State)
	if err != nil || !poll.Done {
		t.Fatalf("check 3: %+v, %v", poll, err)
	}
	var out map[string]any
	if err := json.Unmarshal(poll.Output, &out); err != nil {
		t.Fatal(err)
	}
	ex := srv.Executions()[0]
	if out["execution"] != name || out["task_count"] != 4.0 || out["succeeded"] != 4.0 || out["failed"] != 0.0 ||
		out["cancelled"] != 0.0 || out["logs"] != ex.GetLogUri() || out["completed_at"] != ex.GetCompletionTime().AsTime().Format(time.RFC3339) {
		t.Fatalf("output %s", poll.Output)
	}
	if len(srv.Runs()) != 1 {
		t.Fatalf("%d runs", len(srv.Runs()))
	}
}

// A failed execution fails the step for good with its condition message
// and the logs link.
func TestCheckOfAFailedExecutionIsPermanent(t *testing.T) {
	srv, st := setup(t, runtest.Outcome{FailMessage: "Task load-00001-abc-0 failed with exit code 3"}, settings())
	poll, err := st.Start(ctx, input())
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Check(ctx, input(), poll.State)
	if err == nil || !steps.IsPermanent(err) {
		t.Fatalf("check: %v", err)
	}
	for _, want := range []string{"failed with exit code 3", "3 succeeded, 1 failed, 0 cancelled of 4", srv.Executions()[0].GetLogUri()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func retryInfo(code codes.Code, delay time.Duration) error {
	s, err := status.New(code, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		panic(err)
	}
	return s.Err()
}

// API errors: those retrying cannot change are permanent, the others
// transient, with the delay the API asks for.
func TestAPIErrorsTransientOrPermanent(t *testing.T) {
	cases := []struct {
		err       error
		permanent bool
		after     time.Duration
		says      string
	}{
		{status.Error(codes.Unavailable, "try later"), false, 0, "try later"},
		{status.Error(codes.DeadlineExceeded, "slow"), false, 0, "slow"},
		{status.Error(codes.Internal, "oops"), false, 0, "oops"},
		{status.Error(codes.Aborted, "conflict"), false, 0, "conflict"},
		{retryInfo(codes.ResourceExhausted, 42*time.Second), false, 42 * time.Second, "slow down"},
		{status.Error(codes.NotFound, "gone"), true, 0, "gone"},
		{status.Error(codes.InvalidArgument, "bad"), true, 0, "bad"},
		{status.Error(codes.PermissionDenied, "denied"), true, 0, "needs roles/run.jobsExecutorWithOverrides and roles/run.viewer on the job"},
		{status.Error(codes.Unauthenticated, "bad token"), true, 0, "default credentials"},
	}
	for _, c := range cases {
		t.Run(status.Code(c.err).String(), func(t *testing.T) {
			srv, st := setup(t, runtest.Outcome{Gets: 5}, settings())
			srv.Fail(runtest.RunJob, c.err)
			_, err := st.Start(ctx, input())
			check := func(what string, err error) {
				t.Helper()
				after, _ := steps.RetryAfterOf(err)
				if err == nil || steps.IsPermanent(err) != c.permanent || after != c.after || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("%s: %v (permanent %v, after %s)", what, err, steps.IsPermanent(err), after)
				}
			}
			check("start", err)
			if len(srv.Runs()) != 0 {
				t.Fatal("a failed RunJob ran the job")
			}
			poll, err := st.Start(ctx, input())
			if err != nil {
				t.Fatal(err)
			}
			srv.Fail(runtest.GetExecution, c.err)
			_, err = st.Check(ctx, input(), poll.State)
			check("check", err)
			if poll, err = st.Check(ctx, input(), poll.State); err != nil || poll.Done {
				t.Fatalf("the check after: %+v, %v", poll, err)
			}
		})
	}
}

// A job that does not exist fails the start for good.
func TestStartOfAMissingJobIsPermanent(t *testing.T) {
	set := settings()
	set["job"] = "nope"
	_, st := setup(t, runtest.Outcome{}, set)
	_, err := st.Start(ctx, input())
	if err == nil || !steps.IsPermanent(err) || !strings.Contains(err.Error(), "jobs/nope") {
		t.Fatalf("start: %v", err)
	}
}

// A start repeated for the same generation (a crash after RunJob, a retried
// attempt) adopts the execution it started; a new generation runs the job
// again.
func TestRepeatedStartAdoptsTheExecution(t *testing.T) {
	srv, st := setup(t, runtest.Outcome{Gets: 3}, settings())
	first, err := st.Start(ctx, input())
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.Start(ctx, input()) // the orchestrator crashed before recording the first
	if err != nil {
		t.Fatal(err)
	}
	in := input()
	in.Attempt = 2 // the lease expired: the next attempt of the same generation
	next, err := st.Start(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Runs()); n != 1 {
		t.Fatalf("%d RunJob calls for one generation, want 1", n)
	}
	name := execution(t, first.State)
	if execution(t, again.State) != name || execution(t, next.State) != name || again.Link != first.Link {
		t.Fatalf("states %s %s %s", first.State, again.State, next.State)
	}
	for poll := next; !poll.Done; { // the execution completes
		if poll, err = st.Check(ctx, in, poll.State); err != nil {
			t.Fatal(err)
		}
	}
	in.Attempt = 3 // a start repeated after the execution finished is done at once
	if done, err := st.Start(ctx, in); err != nil || !done.Done || !strings.Contains(string(done.Output), name) || len(srv.Runs()) != 1 {
		t.Fatalf("start after the execution finished: %+v, %v; %d runs", done, err, len(srv.Runs()))
	}
	in.Generation, in.Attempt = 2, 1 // an operator's re-run
	rerun, err := st.Start(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Runs()); n != 2 || execution(t, rerun.State) == name {
		t.Fatalf("re-run: %d RunJob calls, state %s", n, rerun.State)
	}
}

// RunJob that created the execution but whose reply was lost: the start
// fails transiently and the retry adopts the execution.
func TestLostRunReplyIsAdopted(t *testing.T) {
	srv, st := setup(t, runtest.Outcome{Gets: 1}, settings())
	srv.LoseRunReply(1, status.Error(codes.Unavailable, "connection reset"))
	_, err := st.Start(ctx, input())
	if err == nil || steps.IsPermanent(err) {
		t.Fatalf("start with a lost reply: %v", err)
	}
	in := input()
	in.Attempt = 2
	poll, err := st.Start(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Runs()); n != 1 || execution(t, poll.State) != srv.Executions()[0].GetName() {
		t.Fatalf("%d RunJob calls, state %s", n, poll.State)
	}
}

// The execution is found past the first page of the job's executions; a
// list that fails transiently fails the start transiently, running nothing.
func TestAdoptionLooksPastThePage(t *testing.T) {
	srv, st := setup(t, runtest.Outcome{Gets: 9}, settings())
	first, err := st.Start(ctx, input())
	if err != nil {
		t.Fatal(err)
	}
	for g := 2; g <= 70; g++ { // other runs of the job since
		in := input()
		in.RunID = fmt.Sprintf("daily@2026-10-%02d", g%28+1)
		in.Generation = g
		if _, err := st.Start(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	srv.Fail(runtest.ListExecutions, status.Error(codes.Unavailable, "list unavailable"))
	if _, err := st.Start(ctx, input()); err == nil || steps.IsPermanent(err) || len(srv.Runs()) != 70 {
		t.Fatalf("start with a failing list: %v, %d runs", err, len(srv.Runs()))
	}
	again, err := st.Start(ctx, input())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Runs()); n != 70 || execution(t, again.State) != execution(t, first.State) {
		t.Fatalf("%d RunJob calls, state %s, want %s", n, again.State, first.State)
	}
}

// Cancel cancels the execution, whose check then fails the step as
// cancelled; cancelling what has finished is no error; a failing cancel is
// reported.
func TestCancel(t *testing.T) {
	srv, st := setup(t, runtest.Outcome{Gets: 1}, settings())
	poll, err := st.Start(ctx, input())
	if err != nil {
		t.Fatal(err)
	}
	srv.Fail(runtest.CancelExecution, status.Error(codes.Unavailable, "cancel unavailable"))
	if err := st.Cancel(ctx, input(), poll.State); err == nil || !strings.Contains(err.Error(), "cancel unavailable") {
		t.Fatalf("failing cancel: %v", err)
	}
	if err := st.Cancel(ctx, input(), poll.State); err != nil {
		t.Fatal(err)
	}
	name := execution(t, poll.State)
	if got := srv.Cancels(); len(got) != 2 || got[1] != name {
		t.Fatalf("cancels %v", got)
	}
	_, err = st.Check(ctx, input(), poll.State)
	if err == nil || !steps.IsPermanent(err) || !strings.Contains(err.Error(), "was cancelled") || !strings.Contains(err.Error(), "0 succeeded, 0 failed, 4 cancelled of 4") {
		t.Fatalf("check after cancel: %v", err)
	}
	if err := st.Cancel(ctx, input(), poll.State); err != nil {
		t.Fatalf("cancel of a finished execution: %v", err)
	}
	gone, _ := json.Marshal(map[string]string{"execution": name + "-gone"})
	if err := st.Cancel(ctx, input(), gone); err != nil {
		t.Fatalf("cancel of a missing execution: %v", err)
	}
}

// A state that names no execution fails the check for good.
func TestCheckOfABadState(t *testing.T) {
	_, st := setup(t, runtest.Outcome{}, settings())
	for _, raw := range []string{`{}`, `"x"`, `{"execution": ""}`} {
		_, err := st.Check(ctx, input(), json.RawMessage(raw))
		if err == nil || !steps.IsPermanent(err) || !strings.Contains(err.Error(), "names no execution") {
			t.Fatalf("state %s: %v", raw, err)
		}
		if err := st.Cancel(ctx, input(), json.RawMessage(raw)); err == nil {
			t.Fatalf("cancel of state %s: no error", raw)
		}
	}
}

// Run refuses: the kind is asynchronous.
func TestRunRefuses(t *testing.T) {
	_, st := setup(t, runtest.Outcome{}, settings())
	if _, err := st.Run(ctx, input()); err == nil || !steps.IsPermanent(err) || errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
}

// The execution key names run, step and generation, and the ledger: two
// deployments (ledgers) running one pipeline against one job get different
// keys, so neither adopts the other's execution.
func TestKeyCarriesTheNamespace(t *testing.T) {
	in := steps.Input{RunID: "daily@2026-11-23", Step: "load", Generation: 2}
	if got := cloudrunjob.Key(in); got != "daily@2026-11-23/load/g2" {
		t.Fatalf("key without a namespace = %q", got)
	}
	staging, production := in, in
	staging.Namespace, production.Namespace = "projects/acme/databases/(default)/documents/staging-runs", "bolt/7f3a"
	s, p := cloudrunjob.Key(staging), cloudrunjob.Key(production)
	if s == p || !strings.HasPrefix(s, "daily@2026-11-23/load/g2/") || !strings.HasPrefix(p, "daily@2026-11-23/load/g2/") {
		t.Fatalf("keys %q and %q", s, p)
	}
	if s != cloudrunjob.Key(staging) {
		t.Fatal("the same ledger got two keys")
	}
}
