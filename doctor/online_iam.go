package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/pipelinehq/pipeline/pipeline"
)

// invokerRole lets a caller through Cloud Run's IAM check to the service.
const invokerRole = "roles/run.invoker"

// invokers checks the Cloud Run service's IAM policy: both invoker accounts
// hold roles/run.invoker on it.
func (o Online) invokers(ctx context.Context, cfg Config, _ []*pipeline.Definition) []Finding {
	region := cfg.liveRegion()
	if region == "" {
		return []Finding{regionUnknown("the service's IAM policy was")}
	}
	name := fmt.Sprintf("projects/%s/locations/%s/services/%s", cfg.Project, region, cfg.service())
	subject := "Cloud Run service " + cfg.service()
	policy, err := get(ctx, o, name, o.Cloud.GetServiceIAMPolicy)
	switch {
	case notFound(err):
		f := Finding{
			Severity: SeverityError, Check: "iam", Subject: subject,
			Problem: fmt.Sprintf("does not exist (%s)", name),
			Why:     "nothing answers the Scheduler jobs and the queue: no run starts and no step runs",
			Fix:     "gcloud run deploy " + cfg.service() + " --project " + cfg.Project + " --region " + region + " --image IMAGE --no-allow-unauthenticated --timeout=1800 --args=serve   (or deploy/gcloud/deploy.sh, terraform apply)",
		}
		if cfg.Service == "" {
			f.Problem += fmt.Sprintf("; the service name is not known, so %q was assumed (set --service or K_SERVICE)", DefaultService)
		}
		return []Finding{f}
	case err != nil:
		return []Finding{o.unreachable(cfg, runAPI, "the IAM policy of service "+name, err)}
	}
	members := map[string]bool{}
	for _, b := range policy.GetBindings() {
		if b.GetRole() != invokerRole {
			continue
		}
		for _, m := range b.GetMembers() {
			members[strings.ToLower(m)] = true
		}
	}
	var out []Finding
	for _, c := range []struct{ who, account, breaks string }{
		{"Cloud Tasks", cfg.TasksAccount, "every step delivery is refused with 403 before it reaches the service (nothing in its logs) and retried until the queue drops it: no step runs"},
		{"Cloud Scheduler", cfg.SchedulerAccount, "every scheduled start is refused with 403 before it reaches the service (nothing in its logs): no run starts"},
	} {
		member := "serviceAccount:" + strings.ToLower(c.account)
		if c.account == "" || members[strings.ToLower(member)] {
			continue // an unknown account is the offline invokers check's finding
		}
		out = append(out, Finding{
			Severity: SeverityError, Check: "iam", Subject: subject,
			Problem: fmt.Sprintf("%s (the %s invoker) has no %s on the service", member, c.who, invokerRole),
			Why:     c.breaks + " (unless the role is granted on the whole project)",
			Fix:     "gcloud run services add-iam-policy-binding " + cfg.service() + " --project " + cfg.Project + " --region " + region + " --member=" + member + " --role=" + invokerRole,
		})
	}
	for _, public := range []string{"allUsers", "allAuthenticatedUsers"} {
		if members[strings.ToLower(public)] {
			out = append(out, Finding{
				Severity: SeverityWarning, Check: "iam", Subject: subject,
				Problem: fmt.Sprintf("%s has %s: the service is public at Cloud Run's door", public, invokerRole),
				Why:     "the service's own token check (ALLOWED_INVOKERS) is then the only guard, and anyone can make it spend instances",
				Fix:     "gcloud run services remove-iam-policy-binding " + cfg.service() + " --project " + cfg.Project + " --region " + region + " --member=" + public + " --role=" + invokerRole,
			})
		}
	}
	return out
}
