package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// TestAsyncIAMGrantsOnlyWhatIsListed: async_iam.tf grants the runtime the
// role each asynchronous kind needs, every grant iterating over (or
// counted by) the variables that list the resources, so that nothing is
// granted when they are empty.
func TestAsyncIAMGrantsOnlyWhatIsListed(t *testing.T) {
	files := parseAll(t)
	body := files["async_iam.tf"]
	if body == nil {
		t.Fatal("deploy/terraform/async_iam.tf is missing")
	}
	want := map[string][]string{ // resource type: the roles granted with it
		"google_cloud_run_v2_job_iam_member":     {"roles/run.jobsExecutorWithOverrides", "roles/run.viewer"},
		"google_service_account_iam_member":      {"roles/iam.serviceAccountUser"},
		"google_project_iam_member":              {"roles/bigquery.jobUser"},
		"google_bigquery_dataset_iam_member":     {"roles/bigquery.dataEditor"},
		"google_cloud_run_v2_service_iam_member": {"roles/run.invoker"},
	}
	locals := map[string]hclsyntax.Expression{}
	for _, b := range blocks(body, "locals", "") {
		for name, a := range b.Body.Attributes {
			locals[name] = a.Expr
		}
	}
	// fromAsyncVars reports whether e reads only var.async_* lists, directly
	// or through a local that is a for expression over one.
	var fromAsyncVars func(e hclsyntax.Expression) bool
	fromAsyncVars = func(e hclsyntax.Expression) bool {
		vars := e.Variables()
		if len(vars) == 0 {
			return false
		}
		for _, tr := range vars {
			attr := ""
			if len(tr) > 1 {
				if a, ok := tr[1].(hcl.TraverseAttr); ok {
					attr = a.Name
				}
			}
			switch tr.RootName() {
			case "var":
				if !strings.HasPrefix(attr, "async_") {
					return false
				}
			case "local":
				f, ok := locals[attr].(*hclsyntax.ForExpr)
				if !ok || !fromAsyncVars(f.CollExpr) {
					return false
				}
			default:
				return false
			}
		}
		return true
	}
	seen := map[string]bool{}
	for _, b := range blocks(body, "resource", "") {
		typ := b.Labels[0]
		role := literal(t, b.Body.Attributes["role"].Expr)
		if !slices.Contains(want[typ], role) {
			t.Errorf("%s.%s grants %q, want one of %q", typ, b.Labels[1], role, want[typ])
		}
		seen[typ+" "+role] = true
		if m := traversal(b.Body.Attributes["member"].Expr); m != "local.runtime_member" {
			t.Errorf("%s.%s grants to %q, want the runtime (local.runtime_member)", typ, b.Labels[1], m)
		}
		it := b.Body.Attributes["for_each"]
		if it == nil {
			it = b.Body.Attributes["count"]
		}
		if it == nil || !fromAsyncVars(it.Expr) {
			t.Errorf("%s.%s is not iterated over the async_* variables: it would grant when they are empty", typ, b.Labels[1])
		}
	}
	for typ, roles := range want {
		for _, role := range roles {
			if !seen[typ+" "+role] {
				t.Errorf("async_iam.tf has no %s granting %s", typ, role)
			}
		}
	}
	for _, v := range []string{"async_cloud_run_jobs", "async_job_service_accounts", "async_bigquery_datasets", "async_bigquery_job_user", "async_invoked_services"} {
		vb := blocks(files["variables.tf"], "variable", v)
		if len(vb) != 1 {
			t.Errorf("variables.tf: no variable %q", v)
			continue
		}
		if d := vb[0].Body.Attributes["default"]; d == nil {
			t.Errorf("variable %q has no default: a deployment without asynchronous steps would have to set it", v)
		}
	}

	// The project-wide BigQuery grant: none by default, one when a dataset
	// is listed or the job user is asked for.
	count := blocks(body, "resource", "google_project_iam_member")[0].Body.Attributes["count"].Expr
	eval := func(datasets []cty.Value, jobUser bool) int64 {
		list := cty.ListValEmpty(cty.String)
		if len(datasets) > 0 {
			list = cty.ListVal(datasets)
		}
		ctx := &hcl.EvalContext{
			Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{
				"async_bigquery_datasets": list, "async_bigquery_job_user": cty.BoolVal(jobUser),
			})},
			Functions: map[string]function.Function{"length": stdlib.LengthFunc},
		}
		v, diags := count.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("count: %s", diags.Error())
		}
		n, _ := v.AsBigFloat().Int64()
		return n
	}
	if eval(nil, false) != 0 || eval([]cty.Value{cty.StringVal("sales")}, false) != 1 || eval(nil, true) != 1 {
		t.Errorf("bigquery.jobUser count: %d (none) %d (a dataset) %d (job user), want 0 1 1",
			eval(nil, false), eval([]cty.Value{cty.StringVal("sales")}, false), eval(nil, true))
	}
}

// TestDeployScriptGrantsAsyncRolesOnlyWhenAsked: deploy.sh --dry-run
// prints the grants for the resources given, and none without them.
func TestDeployScriptGrantsAsyncRolesOnlyWhenAsked(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dry := func(extra ...string) string {
		t.Helper()
		args := append([]string{filepath.Join("gcloud", "deploy.sh"), "--project", "acme", "--image", "img", "--dry-run",
			"--pipeline-bin", "true", "--pipelines", t.TempDir()}, extra...)
		cmd := exec.Command("bash", args...)
		cmd.Env = append(os.Environ(), "ALLOWED_OPERATORS=", "ASYNC_RUN_JOBS=", "ASYNC_JOB_ACCOUNTS=", "ASYNC_BIGQUERY_DATASETS=", "ASYNC_INVOKED_SERVICES=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("deploy.sh %v: %v\n%s", extra, err, out)
		}
		_, section, _ := strings.Cut(string(out), "# --- IAM for asynchronous steps")
		section, _, _ = strings.Cut(section, "# --- Firestore")
		return section
	}
	if s := dry(); strings.Contains(s, "+ ") {
		t.Fatalf("grants without asynchronous resources:\n%s", s)
	}
	const sa = "serviceAccount:pipeline-dev-run@acme.iam.gserviceaccount.com"
	got := strings.Split(strings.TrimSpace(dry("--run-jobs", "load,projects/other/locations/us-central1/jobs/x",
		"--job-accounts", "jobs@acme.iam.gserviceaccount.com", "--bigquery-datasets", "sales, other:mart", "--invoked-services", "exports")), "\n")
	want := []string{
		"(only what the lists name)",
		"+ gcloud --project acme --quiet run jobs add-iam-policy-binding load --region europe-west1 --member " + sa + " --role roles/run.jobsExecutorWithOverrides",
		"+ gcloud --project acme --quiet run jobs add-iam-policy-binding load --region europe-west1 --member " + sa + " --role roles/run.viewer",
		"+ gcloud --project other --quiet run jobs add-iam-policy-binding x --region us-central1 --member " + sa + " --role roles/run.jobsExecutorWithOverrides",
		"+ gcloud --project other --quiet run jobs add-iam-policy-binding x --region us-central1 --member " + sa + " --role roles/run.viewer",
		"+ gcloud --project acme --quiet iam service-accounts add-iam-policy-binding jobs@acme.iam.gserviceaccount.com --member " + sa + " --role roles/iam.serviceAccountUser",
		"+ gcloud --project acme --quiet services enable bigquery.googleapis.com",
		"+ gcloud --project acme --quiet projects add-iam-policy-binding acme --member " + sa + " --role roles/bigquery.jobUser --condition None",
		"+ bq --project_id acme add-iam-policy-binding --member " + sa + " --role roles/bigquery.dataEditor acme:sales",
		"+ bq --project_id other add-iam-policy-binding --member " + sa + " --role roles/bigquery.dataEditor other:mart",
		"+ gcloud --project acme --quiet run services add-iam-policy-binding exports --region europe-west1 --member " + sa + " --role roles/run.invoker",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("grants:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := dry("--bigquery-job-user"); !strings.Contains(s, "--role roles/bigquery.jobUser") || strings.Contains(s, "dataEditor") {
		t.Fatalf("--bigquery-job-user:\n%s", s)
	}
}
