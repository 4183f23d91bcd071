package cloudrunjob

import (
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// Role is the role the runtime service account needs on the job to run it
// with overrides and cancel its executions (run.jobs.run,
// run.jobs.runWithOverrides, run.executions.cancel). It does not read
// executions: ViewerRole on the job adds run.executions.get and
// run.executions.list.
const Role = "roles/run.jobsExecutorWithOverrides"

// ViewerRole is the read-only role on the job that lets the start list its
// executions and the checks read one.
const ViewerRole = "roles/run.viewer"

// CheckInterval is the wait between checks the step's check_interval asks
// for (0: the orchestrator's default).
func (st *Step) CheckInterval() time.Duration { return st.interval }

// IAMGrants lists the roles the step's calls need: Role and ViewerRole on
// the job, and roles/iam.serviceAccountUser on the job's service account (running a job
// acts as it). The settings do not name that account, so the grant says
// how to find it.
func (st *Step) IAMGrants() []steps.IAMGrant {
	return []steps.IAMGrant{
		{Role: Role, Resource: st.job,
			Why: "the start runs the job with overrides (args, env, task count, timeout); a cancel (timeout, run cancel, forced re-run) cancels the execution"},
		{Role: ViewerRole, Resource: st.job,
			Why: "the start lists the job's executions (to adopt one a repeated start already ran) and each check reads the execution: " + Role + " holds neither run.executions.list nor run.executions.get"},
		{Role: "roles/iam.serviceAccountUser", Resource: "the service account of job " + st.job,
			Why: "running a job acts as the job's own service account; the step's settings do not name it (find it with `gcloud run jobs describe " + st.jobName() + " --project " + st.project + " --region " + st.region + " --format='value(template.template.serviceAccount)'`; empty: the Compute Engine default service account)"},
	}
}

// jobName is the job's short name.
func (st *Step) jobName() string {
	return st.job[len("projects/"+st.project+"/locations/"+st.region+"/jobs/"):]
}
