package doctor_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pipelinehq/pipeline/doctor"
)

// finding is what a test expects: a severity, a check, and texts the
// rendered finding contains.
type finding struct {
	sev   doctor.Severity
	check string
	texts []string
}

// match checks that got is exactly the wanted findings (in any order).
func match(t *testing.T, got []doctor.Finding, want ...finding) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, f := range got {
			if used[i] || f.Severity != w.sev || f.Check != w.check {
				continue
			}
			s, all := f.String(), true
			for _, text := range w.texts {
				all = all && strings.Contains(s, text)
			}
			if all {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("no %s [%s] finding with %q", w.sev, w.check, w.texts)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d findings, want %d", len(got), len(want))
	}
	if t.Failed() {
		t.Logf("findings:\n%s", render(got))
	}
}

func dailyJobOf(w *world) *schedulerpb.Job { return w.jobs[dailyJob] }

func oidcOf(j *schedulerpb.Job) *schedulerpb.OidcToken { return j.GetHttpTarget().GetOidcToken() }

func TestOnlineChecks(t *testing.T) {
	const jobUpdate = "gcloud scheduler jobs update http pipeline-prod-daily --project acme --location europe-west1"
	const addBinding = "gcloud run services add-iam-policy-binding pipeline-prod --project acme --region europe-west1 --member="
	cases := []struct {
		name string
		edit func(w *world)
		cfg  func(c *doctor.Config)
		want []finding
	}{
		{name: "all good"},
		{
			name: "queue missing",
			edit: func(w *world) { delete(w.queues, queueName) },
			want: []finding{{doctor.SeverityError, "queue", []string{"Cloud Tasks queue pipeline-prod: does not exist", "fix: gcloud tasks queues create pipeline-prod --project acme --location europe-west1 --max-attempts=25 "}}},
		},
		{
			name: "queue max attempts not above the steps'",
			edit: func(w *world) { w.queues[queueName].RetryConfig.MaxAttempts = 3 },
			want: []finding{
				{doctor.SeverityError, "queue", []string{"max_attempts is 3, not above the largest step max_attempts 3", "gcloud tasks queues update pipeline-prod --project acme --location europe-west1 --max-attempts=25"}},
				{doctor.SeverityWarning, "queue", []string{"QUEUE_MAX_ATTEMPTS is 25 but the queue's max_attempts is 3", "--update-env-vars QUEUE_MAX_ATTEMPTS=3"}},
			},
		},
		{
			name: "queue unlimited attempts, QUEUE_MAX_ATTEMPTS unknown",
			edit: func(w *world) { w.queues[queueName].RetryConfig.MaxAttempts = -1 },
			cfg:  func(c *doctor.Config) { c.QueueMaxAttempts = 0 },
		},
		{
			name: "queue paused",
			edit: func(w *world) { w.queues[queueName].State = cloudtaskspb.Queue_PAUSED },
			want: []finding{{doctor.SeverityError, "queue", []string{"is PAUSED, not RUNNING", "gcloud tasks queues resume pipeline-prod --project acme --location europe-west1"}}},
		},
		{
			name: "audience with a trailing slash",
			edit: func(w *world) { oidcOf(dailyJobOf(w)).Audience = url + "/" },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"Scheduler job pipeline-prod-daily", "differ only by a trailing slash", jobUpdate + " --oidc-token-audience=" + url}}},
		},
		{
			name: "no audience: Cloud Scheduler uses the URI",
			edit: func(w *world) { oidcOf(w.jobs[reconcileJob]).Audience = "" },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"pipeline-prod-reconcile", "audience (none set, so the job's URI) is \"" + url + "/pipeline/reconcile\""}}},
		},
		{
			name: "wrong time zone",
			edit: func(w *world) { dailyJobOf(w).TimeZone = "Etc/UTC" },
			want: []finding{{doctor.SeverityError, "scheduler", []string{`time zone "Etc/UTC", but the pipeline file says "Europe/Paris"`, jobUpdate + " --time-zone=Europe/Paris"}}},
		},
		{
			name: "wrong OIDC account",
			edit: func(w *world) { oidcOf(dailyJobOf(w)).ServiceAccountEmail = "someone@acme.iam.gserviceaccount.com" },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"signs its token as someone@acme.iam.gserviceaccount.com, not SCHEDULER_SERVICE_ACCOUNT", jobUpdate + " --oidc-service-account-email=" + schedSA}}},
		},
		{
			name: "OIDC account not allowed when SCHEDULER_SERVICE_ACCOUNT is unknown",
			edit: func(w *world) { oidcOf(dailyJobOf(w)).ServiceAccountEmail = "someone@acme.iam.gserviceaccount.com" },
			cfg:  func(c *doctor.Config) { c.SchedulerAccount = "" },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"not on ALLOWED_INVOKERS", "ALLOWED_INVOKERS=" + tasksSA + "," + schedSA + ",someone@acme.iam.gserviceaccount.com"}}},
		},
		{
			name: "no OIDC token",
			edit: func(w *world) { dailyJobOf(w).GetHttpTarget().AuthorizationHeader = nil },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"sends no OIDC token", "--oidc-service-account-email=" + schedSA + " --oidc-token-audience=" + url}}},
		},
		{
			name: "retry count 0",
			edit: func(w *world) { dailyJobOf(w).RetryConfig.RetryCount = 0 },
			want: []finding{{doctor.SeverityWarning, "scheduler-retries", []string{"retry count 0", jobUpdate + " --max-retry-attempts=3"}}},
		},
		{
			name: "wrong target, method, schedule and deadline; paused",
			edit: func(w *world) {
				j := dailyJobOf(w)
				j.State = schedulerpb.Job_PAUSED
				j.Schedule = "0 7 * * *"
				j.AttemptDeadline = durationpb.New(15 * time.Second)
				j.GetHttpTarget().Uri = url + "/start"
				j.GetHttpTarget().HttpMethod = schedulerpb.HttpMethod_GET
			},
			want: []finding{
				{doctor.SeverityError, "scheduler", []string{"is PAUSED, not ENABLED", "pipeline unpause daily", "gcloud scheduler jobs resume pipeline-prod-daily"}},
				{doctor.SeverityError, "scheduler", []string{"calls " + url + "/start, not " + url + "/pipeline/start", "--uri=" + url + "/pipeline/start"}},
				{doctor.SeverityError, "scheduler", []string{"HTTP method GET, not POST", "--http-method=POST"}},
				{doctor.SeverityWarning, "scheduler", []string{`schedule "0 7 * * *", but the pipeline file says "0 6 * * *"`, "--schedule='0 6 * * *'"}},
				{doctor.SeverityWarning, "scheduler", []string{"attempt deadline 15s is below 45s", "--attempt-deadline=45s"}},
			},
		},
		{
			name: "job missing",
			edit: func(w *world) { delete(w.jobs, dailyJob) },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"pipeline-prod-daily: does not exist",
				"gcloud scheduler jobs create http pipeline-prod-daily --project acme --location europe-west1 --schedule='0 6 * * *' --time-zone=Europe/Paris --attempt-deadline=45s --uri=" + url + "/pipeline/start --http-method=POST --message-body='{\"pipeline\":\"daily\"}' --oidc-service-account-email=" + schedSA + " --oidc-token-audience=" + url + " --max-retry-attempts=3"}}},
		},
		{
			name: "reconcile tick paused: nothing watches the schedules",
			edit: func(w *world) { w.jobs[reconcileJob].State = schedulerpb.Job_PAUSED },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"pipeline-prod-reconcile: is PAUSED, not ENABLED", "missed starts and late runs go unreported", "gcloud scheduler jobs resume pipeline-prod-reconcile"}}},
		},
		{
			name: "reconcile tick calls the wrong route",
			edit: func(w *world) { w.jobs[reconcileJob].GetHttpTarget().Uri = url + "/pipeline/start" },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"pipeline-prod-reconcile: calls " + url + "/pipeline/start, not " + url + "/pipeline/reconcile", "--uri=" + url + "/pipeline/reconcile"}}},
		},
		{
			name: "reconcile job missing",
			edit: func(w *world) { delete(w.jobs, reconcileJob) },
			want: []finding{{doctor.SeverityError, "scheduler", []string{"pipeline-prod-reconcile: does not exist", "re-drives", "--schedule='*/5 * * * *' --time-zone=Etc/UTC --attempt-deadline=120s --uri=" + url + "/pipeline/reconcile", "--max-retry-attempts=0"}}},
		},
		{
			name: "tasks invoker binding missing",
			edit: func(w *world) { w.policies[serviceName].Bindings[1].Members = []string{schedMember} },
			want: []finding{{doctor.SeverityError, "iam", []string{tasksMember + " (the Cloud Tasks invoker) has no roles/run.invoker", addBinding + tasksMember + " --role=roles/run.invoker"}}},
		},
		{
			name: "scheduler invoker binding missing",
			edit: func(w *world) { w.policies[serviceName].Bindings[1].Members = []string{tasksMember} },
			want: []finding{{doctor.SeverityError, "iam", []string{schedMember + " (the Cloud Scheduler invoker) has no roles/run.invoker", addBinding + schedMember + " --role=roles/run.invoker"}}},
		},
		{
			name: "no invoker binding, service public",
			edit: func(w *world) {
				w.policies[serviceName].Bindings = []*iampb.Binding{{Role: invokerRole, Members: []string{"allUsers"}}}
			},
			want: []finding{
				{doctor.SeverityError, "iam", []string{tasksMember, addBinding + tasksMember}},
				{doctor.SeverityError, "iam", []string{schedMember, addBinding + schedMember}},
				{doctor.SeverityWarning, "iam", []string{"allUsers has roles/run.invoker", "remove-iam-policy-binding pipeline-prod"}},
			},
		},
		{
			name: "service missing",
			edit: func(w *world) { delete(w.policies, serviceName) },
			want: []finding{{doctor.SeverityError, "iam", []string{"Cloud Run service pipeline-prod: does not exist", "gcloud run deploy pipeline-prod --project acme --region europe-west1"}}},
		},
		{
			name: "permission denied on each API: one warning each, naming the permission",
			edit: func(w *world) {
				for _, m := range []string{getQueue, getJob, getIAMPolicy} {
					w.fail[m] = status.Error(codes.PermissionDenied, "the caller does not have permission")
				}
			},
			want: []finding{
				{doctor.SeverityWarning, "online", []string{"Cloud Tasks API", "permission cloudtasks.queues.get denied", "--role=roles/cloudtasks.viewer"}},
				{doctor.SeverityWarning, "online", []string{"Cloud Scheduler API", "permission cloudscheduler.jobs.get denied", "--role=roles/cloudscheduler.viewer"}},
				{doctor.SeverityWarning, "online", []string{"Cloud Run API", "permission run.services.getIamPolicy denied", "gcloud projects add-iam-policy-binding acme --member=user:$(gcloud config get-value account) --role=roles/run.viewer"}},
			},
		},
		{
			name: "API disabled",
			edit: func(w *world) {
				w.fail[getJob] = status.Error(codes.PermissionDenied, "Cloud Scheduler API has not been used in project 123 before or it is disabled.")
			},
			want: []finding{{doctor.SeverityWarning, "online", []string{"the Cloud Scheduler API is not enabled in project acme", "gcloud services enable cloudscheduler.googleapis.com --project acme"}}},
		},
		{
			name: "credentials refused",
			edit: func(w *world) { w.fail[getIAMPolicy] = status.Error(codes.Unauthenticated, "token expired") },
			want: []finding{{doctor.SeverityWarning, "online", []string{"Cloud Run API", "credentials were refused", "gcloud auth application-default login"}}},
		},
		{
			name: "no project",
			cfg:  func(c *doctor.Config) { c.Project = "" },
			want: []finding{{doctor.SeverityWarning, "online", []string{"GOOGLE_CLOUD_PROJECT is not set"}}},
		},
		{
			name: "local backend: nothing to check",
			edit: func(w *world) { delete(w.queues, queueName) },
			cfg:  func(c *doctor.Config) { c.Backend = "local" },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := goodWorld()
			if tc.edit != nil {
				w.edit(tc.edit)
			}
			cfg := good()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			got := doctor.Online{Cloud: standIn(t, w)}.Run(context.Background(), cfg, daily(t))
			match(t, got, tc.want...)
			if doctor.Failed(got) != (len(tc.want) > 0 && tc.want[0].sev == doctor.SeverityError) {
				t.Errorf("Failed = %v", doctor.Failed(got))
			}
		})
	}
}

// An API that does not answer is a warning per API once the timeout passes;
// the doctor does not hang and does not fail.
func TestOnlineUnreachableAPIsAreWarnings(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	g, err := doctor.NewGCP(context.Background(), option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := doctor.Online{Cloud: g, Timeout: 300 * time.Millisecond}.Run(context.Background(), good(), daily(t))
	match(t, got,
		finding{doctor.SeverityWarning, "online", []string{"Cloud Tasks API", "cloudtasks.googleapis.com"}},
		finding{doctor.SeverityWarning, "online", []string{"Cloud Scheduler API", "cloudscheduler.googleapis.com"}},
		finding{doctor.SeverityWarning, "online", []string{"Cloud Run API", "run.googleapis.com"}},
	)
	if doctor.Failed(got) {
		t.Error("an unreachable API failed the doctor")
	}
}

func TestCheckOnlineSkipsCleanly(t *testing.T) {
	called := false
	noCreds := func(ctx context.Context, scopes ...string) (*google.Credentials, error) {
		called = true
		return nil, errors.New("google: could not find default credentials. See https://cloud.google.com/docs/authentication/external/set-up-adc for more information")
	}
	for _, tc := range []struct {
		name   string
		opts   doctor.OnlineOptions
		cfg    func(*doctor.Config)
		note   string
		lookup bool
	}{
		{name: "offline", opts: doctor.OnlineOptions{Offline: true, FindCredentials: noCreds}, note: "online checks skipped: --offline"},
		{name: "local backend", opts: doctor.OnlineOptions{FindCredentials: noCreds}, cfg: func(c *doctor.Config) { c.Backend = "local" }, note: "online checks skipped: PIPELINE_BACKEND is not gcp"},
		{name: "no credentials", opts: doctor.OnlineOptions{FindCredentials: noCreds}, lookup: true,
			note: "online checks skipped: no Google credentials (google: could not find default credentials."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called = false
			cfg := good()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			got, note := doctor.CheckOnline(context.Background(), cfg, daily(t), tc.opts)
			if len(got) != 0 || !strings.HasPrefix(note, tc.note) || strings.Contains(note, "\n") || called != tc.lookup {
				t.Fatalf("findings %v, note %q, credentials looked up %v", got, note, called)
			}
		})
	}
}

// With credentials found, CheckOnline builds the real clients with them: the
// stand-in (over TLS, so the token is sent) sees the bearer token.
func TestCheckOnlineUsesTheCredentialsFound(t *testing.T) {
	w := goodWorld()
	w.edit(func(w *world) { dailyJobOf(w).RetryConfig.RetryCount = 0 })
	creds := func(ctx context.Context, scopes ...string) (*google.Credentials, error) {
		if len(scopes) != 1 || scopes[0] != "https://www.googleapis.com/auth/cloud-platform" {
			t.Errorf("scopes %v", scopes)
		}
		return &google.Credentials{ProjectID: "acme", TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "stand-in-token", TokenType: "Bearer"})}, nil
	}
	cfg := good()
	got, note := doctor.CheckOnline(context.Background(), cfg, daily(t), doctor.OnlineOptions{FindCredentials: creds, ClientOptions: tlsStandIn(t, w)})
	if note != "online checks: queue pipeline-prod, 2 Scheduler job(s), the IAM policy of service pipeline-prod (project acme)" {
		t.Errorf("note %q", note)
	}
	match(t, got, finding{doctor.SeverityWarning, "scheduler-retries", []string{"pipeline-prod-daily"}})
	w.edit(func(w *world) {
		if len(w.auth) != 1 || w.auth[0] != standInBearer {
			t.Errorf("authorization %q", w.auth)
		}
	})
	// The offline check reports the same warning from SCHEDULER_RETRIES=0:
	// Merge keeps one.
	cfg.SchedulerRetries = 0
	offline := doctor.Run(cfg, daily(t))
	merged := doctor.Merge(offline, got)
	if len(offline) != 1 || len(merged) != 1 {
		t.Fatalf("offline:\n%s\nmerged:\n%s", render(offline), render(merged))
	}
}
