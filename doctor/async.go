package doctor

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// MaxChecksPerWait is the most checks one wait of an asynchronous step may
// take (its timeout over its check interval) before the doctor warns: each
// check is a Cloud Tasks task and a request.
const MaxChecksPerWait = 10_000

// checkIntervaler is an asynchronous step whose settings choose the wait
// between its checks (0: the orchestrator's default).
type checkIntervaler interface {
	CheckInterval() time.Duration
}

// iamGranter is an asynchronous step that names the IAM roles its calls
// need (steps.IAMGrant).
type iamGranter interface {
	IAMGrants() []steps.IAMGrant
}

// asyncSteps calls f with every asynchronous step of defs.
func asyncSteps(defs []*pipeline.Definition, f func(d *pipeline.Definition, s *pipeline.StepDef, body steps.AsyncStep)) {
	for _, d := range defs {
		for _, s := range d.Steps {
			if body, ok := s.Body.(steps.AsyncStep); ok {
				f(d, s, body)
			}
		}
	}
}

// CheckIntervals checks each asynchronous step's check interval against the
// orchestrator's minimum and the step's timeout (which bounds the whole
// wait): an interval the orchestrator raises, one that leaves no check
// before the timeout, and one that makes more than MaxChecksPerWait checks.
func CheckIntervals(_ Config, defs []*pipeline.Definition) []Finding {
	var out []Finding
	asyncSteps(defs, func(d *pipeline.Definition, s *pipeline.StepDef, body steps.AsyncStep) {
		interval, ok := checkInterval(s, body)
		if !ok {
			return // the kind chooses its intervals at run time
		}
		subject := fmt.Sprintf("pipeline %s, step %s", d.Name, s.Name)
		if interval <= 0 {
			interval = pipeline.DefaultCheckInterval
		}
		switch {
		case interval < pipeline.MinCheckInterval:
			out = append(out, Finding{
				Severity: SeverityWarning, Check: "check-interval", Subject: subject,
				Problem: fmt.Sprintf("check interval %s is below the orchestrator's minimum %s", interval, pipeline.MinCheckInterval),
				Why:     fmt.Sprintf("the step is checked every %s, not every %s", pipeline.MinCheckInterval, interval),
				Fix:     fmt.Sprintf("set `check_interval: %s` (or more) on step %s in the pipeline file", pipeline.MinCheckInterval, s.Name),
			})
		case interval >= s.Timeout:
			out = append(out, Finding{
				Severity: SeverityError, Check: "check-interval", Subject: subject,
				Problem: fmt.Sprintf("check interval %s is not shorter than the step's timeout %s", interval, s.Timeout),
				Why:     "the first check falls at the timeout, which ends the wait: unless the work finishes at once the step fails every time without being checked",
				Fix:     fmt.Sprintf("set `check_interval` well below the timeout (say %s) or raise `timeout` on step %s in the pipeline file", suggestInterval(s.Timeout), s.Name),
			})
		case s.Timeout/interval > MaxChecksPerWait:
			out = append(out, Finding{
				Severity: SeverityWarning, Check: "check-interval", Subject: subject,
				Problem: fmt.Sprintf("timeout %s at a check every %s is up to %d checks per wait, above %d", s.Timeout, interval, s.Timeout/interval, MaxChecksPerWait),
				Why:     "each check is a Cloud Tasks task and a request to the service and to the remote API (billed, and rate-limited remotely)",
				Fix:     fmt.Sprintf("set `check_interval: %s` (or more) on step %s in the pipeline file", suggestInterval(s.Timeout), s.Name),
			})
		}
	})
	return out
}

// checkInterval is the check interval step s asks for: its kind's
// CheckInterval (the built-in kinds have one), else its `check_interval`
// setting (the built-in kinds' name for it), else unknown.
func checkInterval(s *pipeline.StepDef, body steps.AsyncStep) (time.Duration, bool) {
	if ci, ok := body.(checkIntervaler); ok {
		return ci.CheckInterval(), true
	}
	if v, ok := s.Settings["check_interval"].(string); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d, true
		}
	}
	return 0, false
}

// suggestInterval is an interval giving about 100 checks over timeout,
// rounded to a second, at least the minimum.
func suggestInterval(timeout time.Duration) time.Duration {
	return max((timeout / 100).Round(time.Second), pipeline.MinCheckInterval)
}

// Role is an IAM role the service's runtime service account needs for an
// asynchronous step of a deployed pipeline.
type Role struct {
	Pipeline string `json:"pipeline"`
	Step     string `json:"step"`
	Kind     string `json:"kind"`
	steps.IAMGrant
	// Fix is the command that grants it.
	Fix string `json:"fix"`
}

// AsyncRoles lists the IAM roles the asynchronous steps of defs need, each
// with the command that grants it to the runtime service account.
func AsyncRoles(cfg Config, defs []*pipeline.Definition) []Role {
	var out []Role
	asyncSteps(defs, func(d *pipeline.Definition, s *pipeline.StepDef, body steps.AsyncStep) {
		g, ok := body.(iamGranter)
		if !ok {
			return // the kind names no roles
		}
		for _, g := range g.IAMGrants() {
			out = append(out, Role{Pipeline: d.Name, Step: s.Name, Kind: s.Kind, IAMGrant: g, Fix: grantCommand(cfg, g)})
		}
	})
	return out
}

// grantCommand is the gcloud command granting g to the runtime account.
func grantCommand(cfg Config, g steps.IAMGrant) string {
	member := "serviceAccount:" + orPlaceholder(cfg.RuntimeAccount, "RUNTIME_SERVICE_ACCOUNT")
	tail := " --member=" + member + " --role=" + g.Role
	switch {
	case g.Resource == "project":
		return "gcloud projects add-iam-policy-binding " + cfg.project() + tail
	case strings.HasPrefix(g.Resource, "project "):
		return "gcloud projects add-iam-policy-binding " + strings.TrimPrefix(g.Resource, "project ") + tail
	case g.Role == "roles/run.invoker":
		if svc, ok := cloudRunService(g.Resource); ok {
			return fmt.Sprintf("gcloud run services add-iam-policy-binding %s --project %s --region %s%s", svc.name, svc.project, svc.region, tail)
		}
		return "gcloud run services add-iam-policy-binding SERVICE --project PROJECT --region REGION" + tail + "   (SERVICE is the Cloud Run service at " + g.Resource + ")"
	case strings.HasPrefix(g.Resource, "projects/") && strings.Contains(g.Resource, "/jobs/"):
		parts := strings.Split(g.Resource, "/")
		if len(parts) == 6 {
			return fmt.Sprintf("gcloud run jobs add-iam-policy-binding %s --project %s --region %s%s", parts[5], parts[1], parts[3], tail)
		}
	case strings.HasPrefix(g.Role, "roles/bigquery.") && datasetName.MatchString(g.Resource):
		project, _, _ := strings.Cut(g.Resource, ":")
		return "bq --project_id " + project + " add-iam-policy-binding --member=" + member + " --role=" + g.Role + " " + g.Resource
	case strings.HasSuffix(g.Resource, ".gserviceaccount.com"):
		return "gcloud iam service-accounts add-iam-policy-binding " + g.Resource + tail
	}
	return "grant " + g.Role + " on " + g.Resource + " to " + member + " (deploy/terraform async_iam.tf or deploy/gcloud/deploy.sh do it: docs/deploy.md)"
}

// datasetName is a BigQuery dataset named PROJECT:DATASET.
var datasetName = regexp.MustCompile(`^[a-z][a-z0-9.:-]*[a-z0-9]:[A-Za-z0-9_]+$`)

// runService is a Cloud Run service named by its URL.
type runService struct{ name, project, region string }

// cloudRunService reads the service, project number and region from a
// deterministic Cloud Run URL, https://SERVICE-PROJECT_NUMBER.REGION.run.app.
// The older hashed URLs (https://SERVICE-HASH-XX.a.run.app) name no region.
func cloudRunService(raw string) (runService, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		return runService{}, false
	}
	labels := strings.Split(u.Hostname(), ".")
	if len(labels) != 4 || labels[2] != "run" || labels[3] != "app" {
		return runService{}, false
	}
	i := strings.LastIndexByte(labels[0], '-')
	if i <= 0 || i == len(labels[0])-1 {
		return runService{}, false
	}
	number := labels[0][i+1:]
	for _, c := range number {
		if c < '0' || c > '9' {
			return runService{}, false
		}
	}
	return runService{name: labels[0][:i], project: number, region: labels[1]}, true
}
