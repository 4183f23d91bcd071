package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/pipelinehq/pipeline/pipeline"
)

// exprText is the source text of an expression (templates included).
func exprText(t *testing.T, file string, e hclsyntax.Expression) string {
	t.Helper()
	src := readTF(t, file)
	r := e.Range()
	return string(src[r.Start.Byte:r.End.Byte])
}

// TestSweeperWatched checks who watches the watcher: a log-based metric on
// the sweeper's own log line (the constant the code logs) and an alert policy
// when it is absent for 30 minutes, told to the notification channels
// variable.
func TestSweeperWatched(t *testing.T) {
	files := parseAll(t)
	mon, ok := files["monitoring.tf"]
	if !ok {
		t.Fatal("deploy/terraform/monitoring.tf is missing")
	}
	metrics := blocks(mon, "resource", "google_logging_metric")
	if len(metrics) != 1 {
		t.Fatalf("%d log-based metrics; want 1", len(metrics))
	}
	filter := exprText(t, "monitoring.tf", metrics[0].Body.Attributes["filter"].Expr)
	if !strings.Contains(filter, `jsonPayload.message=\"`+pipeline.SweeperTickMessage+`\"`) || !strings.Contains(filter, "cloud_run_revision") {
		t.Errorf("metric filter %s does not select the sweeper's %q log line", filter, pipeline.SweeperTickMessage)
	}
	policies := blocks(mon, "resource", "google_monitoring_alert_policy")
	if len(policies) != 1 {
		t.Fatalf("%d alert policies; want 1", len(policies))
	}
	p := policies[0].Body
	if got := traversal(p.Attributes["notification_channels"].Expr); got != "var.notification_channels" {
		t.Errorf("notification_channels = %q; want var.notification_channels", got)
	}
	if name := exprText(t, "monitoring.tf", p.Attributes["display_name"].Expr); !strings.Contains(name, "no sweeper tick for 30 minutes") {
		t.Errorf("display_name %s", name)
	}
	conds := blocks(p, "conditions", "")
	if len(conds) != 1 {
		t.Fatalf("%d conditions; want 1", len(conds))
	}
	absent := blocks(conds[0].Body, "condition_absent", "")
	if len(absent) != 1 {
		t.Fatal("the condition is not condition_absent")
	}
	a := absent[0].Body
	if d := literal(t, a.Attributes["duration"].Expr); d != "1800s" {
		t.Errorf("absent for %q; want 1800s", d)
	}
	if f := exprText(t, "monitoring.tf", a.Attributes["filter"].Expr); !strings.Contains(f, "google_logging_metric.sweeper_ticks.name") {
		t.Errorf("condition filter %s does not use the metric", f)
	}
	if len(blocks(files["variables.tf"], "variable", "notification_channels")) != 1 {
		t.Error("variables.tf: no variable notification_channels")
	}
	apis := exprText(t, "apis.tf", blocks(files["apis.tf"], "resource", "google_project_service")[0].Body.Attributes["for_each"].Expr)
	for _, api := range []string{"logging.googleapis.com", "monitoring.googleapis.com"} {
		if !strings.Contains(apis, api) {
			t.Errorf("apis.tf does not enable %s", api)
		}
	}
}

// TestRuntimeMayPauseJobs checks that the runtime may pause and resume the
// Scheduler jobs (pipeline pause through the service), with no broader role.
func TestRuntimeMayPauseJobs(t *testing.T) {
	iam := parseAll(t)["iam.tf"]
	roles := blocks(iam, "resource", "google_project_iam_custom_role")
	if len(roles) != 1 {
		t.Fatalf("%d custom roles; want 1 (the Scheduler job pauser)", len(roles))
	}
	perms := exprText(t, "iam.tf", roles[0].Body.Attributes["permissions"].Expr)
	for _, p := range []string{"cloudscheduler.jobs.pause", "cloudscheduler.jobs.enable"} {
		if !strings.Contains(perms, p) {
			t.Errorf("the pauser role lacks %s: %s", p, perms)
		}
	}
	bound := false
	for _, b := range blocks(iam, "resource", "google_project_iam_member") {
		if traversal(b.Body.Attributes["role"].Expr) == "google_project_iam_custom_role.scheduler_pauser.name" {
			bound = strings.Contains(exprText(t, "iam.tf", b.Body.Attributes["member"].Expr), "google_service_account.runtime.email")
		}
	}
	if !bound {
		t.Error("the runtime service account does not get the pauser role")
	}
}

func readTF(t *testing.T, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(tfDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return src
}
