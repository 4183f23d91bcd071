package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/pipelinehq/pipeline/pipeline"
)

// asyncInvokers checks, for each asynchronous step calling a private Cloud
// Run service by its deterministic URL, that the runtime service account
// holds roles/run.invoker on that service (read from its IAM policy, as
// invokers does for this service). Other roles are listed, not checked.
func (o Online) asyncInvokers(ctx context.Context, cfg Config, defs []*pipeline.Definition) []Finding {
	if cfg.RuntimeAccount == "" {
		return nil // AsyncRoles lists the roles with a placeholder account
	}
	member := strings.ToLower("serviceAccount:" + cfg.RuntimeAccount)
	var out []Finding
	seen := map[string]bool{}
	for _, r := range AsyncRoles(cfg, defs) {
		svc, ok := cloudRunService(r.Resource)
		if r.Role != invokerRole || !ok {
			continue
		}
		name := fmt.Sprintf("projects/%s/locations/%s/services/%s", svc.project, svc.region, svc.name)
		if seen[name] {
			continue
		}
		seen[name] = true
		subject := fmt.Sprintf("pipeline %s, step %s", r.Pipeline, r.Step)
		policy, err := get(ctx, o, name, o.Cloud.GetServiceIAMPolicy)
		switch {
		case notFound(err):
			out = append(out, Finding{
				Severity: SeverityError, Check: "async-iam", Subject: subject,
				Problem: fmt.Sprintf("the Cloud Run service it calls, %s (%s), does not exist", r.Resource, name),
				Why:     "the step's start fails every attempt (404 or DNS), so the run stops there",
				Fix:     "deploy that service, or correct the step's url and audience in the pipeline file",
			})
			continue
		case err != nil:
			out = append(out, o.unreachable(cfg, runAPI, "the IAM policy of service "+name, err))
			continue
		}
		has := false
		for _, b := range policy.GetBindings() {
			if b.GetRole() != invokerRole {
				continue
			}
			for _, m := range b.GetMembers() {
				m = strings.ToLower(m)
				has = has || m == member || m == "allusers" || m == "allauthenticatedusers"
			}
		}
		if !has {
			out = append(out, Finding{
				Severity: SeverityError, Check: "async-iam", Subject: subject,
				Problem: fmt.Sprintf("serviceAccount:%s (the service's runtime account) has no %s on %s, which the step calls", cfg.RuntimeAccount, invokerRole, r.Resource),
				Why:     "Cloud Run refuses the step's start with 403 before it reaches the target: the step fails (a 4xx is permanent) and the run stops",
				Fix:     r.Fix,
			})
		}
	}
	return out
}
