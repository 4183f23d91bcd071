// Package doctor finds misconfiguration of a deployed pipeline service before
// it bites: an OIDC audience that differs from the service URL, step timeouts
// longer than Cloud Tasks' dispatch deadline or Cloud Run's request timeout,
// callers missing from the allowlist, a malformed Discord webhook, and more.
//
// The offline checks are pure functions over a Config and the loaded
// pipelines; the online ones (Online, CheckOnline) read the live queue,
// Scheduler jobs and the service's IAM policy through the Cloud client
// libraries when credentials are present. Pipeline files that fail to load
// are findings too (PipelineFiles): the other checks go on without them. Each Finding says what is wrong,
// why it breaks, and the gcloud command that fixes it. Only findings of SeverityError make `pipeline doctor` fail;
// warnings are printed and do not change the exit code (unless --strict).
package doctor
