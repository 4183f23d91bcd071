package steps

import "time"

// IAMGrant is an IAM role the service's runtime service account needs for
// an asynchronous step's calls, on one resource. An AsyncStep lists them
// with an IAMGrants() []IAMGrant method: `pipeline doctor` shows them (and
// checks those it can), and deploy/ grants them per kind.
type IAMGrant struct {
	// Role is the role, e.g. roles/run.invoker.
	Role string `json:"role"`
	// Resource is what the role is granted on: "project", a Cloud Run
	// service URL, a resource name (projects/P/locations/R/jobs/J), a
	// BigQuery dataset (PROJECT:DATASET) or a service account's email.
	Resource string `json:"resource"`
	// Why says which call needs it.
	Why string `json:"why"`
}

// CheckInterval is the wait between checks the step's settings ask for
// (0: the orchestrator's default); `pipeline doctor` checks it against the
// step's timeout.
func (h *asyncHTTPStep) CheckInterval() time.Duration { return h.interval }

// IAMGrants lists the roles the step's calls need: roles/run.invoker on a
// private Cloud Run target (the step sends an ID token for its audience).
func (h *asyncHTTPStep) IAMGrants() []IAMGrant {
	if h.audience == "" {
		return nil
	}
	return []IAMGrant{{Role: "roles/run.invoker", Resource: h.audience,
		Why: "the start and every check send an ID token for this audience: a private Cloud Run target refuses them (403) without the role"}}
}
