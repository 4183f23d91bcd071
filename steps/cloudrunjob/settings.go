package cloudrunjob

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// Limits of the Run API that the settings are checked against.
const (
	maxTaskCount   = 10000
	maxTaskTimeout = 168 * time.Hour
)

// The patterns are compiled on first use, not at start-up: every `pipeline`
// process links this package, and most never read these settings (0.4 ms of
// a cold start).
var (
	// regionRE is a Cloud Run region such as europe-west1.
	regionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]+(-[a-z]+)+[0-9]+$`) })
	// labelRE is a DNS label: Cloud Run job and container names.
	labelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`) })
	// envNameRE is an environment variable name the kind accepts.
	envNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
)

// The environment variables every execution gets (overriding the job's).
const (
	// EnvKey holds the execution key: run, step, generation and ledger. Start
	// adopts an execution of the job that carries its key instead of
	// running the job again.
	EnvKey    = "PIPELINE_EXECUTION_KEY"
	EnvRunID  = "PIPELINE_RUN_ID"
	EnvStep   = "PIPELINE_STEP"
	EnvDate   = "PIPELINE_DATE"
	EnvParams = "PIPELINE_PARAMS"
)

var reservedEnv = map[string]bool{EnvKey: true, EnvRunID: true, EnvStep: true, EnvDate: true, EnvParams: true}

// namedTemplate is an env variable with its value template.
type namedTemplate struct {
	name  string
	value *template.Template
}

// New builds a `cloudrun.job` step from its settings, its clients c:
//
//	project:   Google Cloud project of the job (required)
//	region:    the job's region, such as europe-west1 (required)
//	job:       the Cloud Run Job's name (required)
//	container: the container the args and env apply to (only needed when
//	           the job has more than one)
//	args:      list of arguments, replacing the job's
//	env:       mapping of variable name to value, merged into the job's
//	task_count: number of tasks of the execution (1..10000; default the job's)
//	timeout:   each task's timeout such as "2h" (up to 168h; default the job's)
//	check_interval: the wait between checks of the execution (default the
//	           orchestrator's, 30s)
//
// args and env values are text/templates over .RunID .Pipeline .Step .Date
// (YYYY-MM-DD) .Attempt and .Params.NAME, as in the http kind; a missing
// param fails the step. Every execution also gets PIPELINE_RUN_ID,
// PIPELINE_STEP, PIPELINE_DATE, PIPELINE_PARAMS (the params as a JSON
// object) and PIPELINE_EXECUTION_KEY; env may not set these.
func (c *Clients) New(settings map[string]any) (steps.Step, error) {
	s := steps.ReadSettings(Kind, settings)
	project := s.String("project", true)
	region := s.String("region", true)
	job := s.String("job", true)
	container := s.String("container", false)
	args := s.Strings("args")
	env := s.StringMap("env")
	taskCount := s.Int("task_count", 0, 1, maxTaskCount)
	timeout := s.Duration("timeout", false)
	interval := s.Duration("check_interval", false)

	if project != "" && (strings.ContainsAny(project, "/ \t\n") || strings.HasPrefix(project, "projects")) {
		s.Problemf("project %q must be a project ID such as acme-prod", project)
	}
	if region != "" && !regionRE().MatchString(region) {
		s.Problemf("region %q must be a Cloud Run region such as europe-west1", region)
	}
	if job != "" && !labelRE().MatchString(job) {
		s.Problemf("job %q must be a Cloud Run Job name (lowercase letters, digits and hyphens, at most 63), not a path", job)
	}
	if container != "" && !labelRE().MatchString(container) {
		s.Problemf("container %q must be a container name (lowercase letters, digits and hyphens)", container)
	}
	if timeout > maxTaskTimeout {
		s.Problemf("timeout %s is longer than Cloud Run's task limit of 168h", timeout)
	}
	if timeout > 0 && timeout%time.Second != 0 {
		s.Problemf("timeout %s must be whole seconds", timeout)
	}
	parse := func(what, text string) *template.Template {
		t, err := template.New(what).Option("missingkey=error").Parse(text)
		if err != nil {
			s.Problemf("%s: bad template: %v", what, err)
			return nil
		}
		return t
	}
	st := &Step{
		clients: c, project: project, region: region,
		job:       fmt.Sprintf("projects/%s/locations/%s/jobs/%s", project, region, job),
		container: container, taskCount: int32(taskCount), timeout: timeout, interval: interval,
	}
	if args != nil { // args: [] clears the job's
		st.args = make([]*template.Template, 0, len(args))
	}
	for i, a := range args {
		st.args = append(st.args, parse(fmt.Sprintf("args[%d]", i), a))
	}
	for _, name := range sortedKeys(env) {
		switch {
		case !envNameRE().MatchString(name):
			s.Problemf("env: %q is not a variable name (letters, digits and _, not starting with a digit)", name)
		case reservedEnv[name]:
			s.Problemf("env: %s is set by the kind itself", name)
		default:
			st.env = append(st.env, namedTemplate{name: name, value: parse("env."+name, env[name])})
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return st, nil
}
