package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

const tfDir = "terraform"

// parseAll parses every .tf file, failing with the file name on a syntax error.
func parseAll(t *testing.T) map[string]*hclsyntax.Body {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(tfDir, "*.tf"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no .tf files in %s: %v", tfDir, err)
	}
	p := hclparse.NewParser()
	out := map[string]*hclsyntax.Body{}
	for _, name := range names {
		f, diags := p.ParseHCLFile(name)
		if diags.HasErrors() {
			t.Errorf("%s: %s", name, diags.Error())
			continue
		}
		out[filepath.Base(name)] = f.Body.(*hclsyntax.Body)
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// TestTerraformFormatted is `terraform fmt -check` without terraform.
func TestTerraformFormatted(t *testing.T) {
	names, _ := filepath.Glob(filepath.Join(tfDir, "*.tf"))
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := hclwrite.Format(src); string(got) != string(src) {
			t.Errorf("%s is not formatted as terraform fmt would (run terraform fmt %s); first difference at line %d", name, tfDir, firstDiffLine(src, got))
		}
	}
	parseAll(t)
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// blocks lists the blocks of body of a type whose first label is label
// ("" for any).
func blocks(body *hclsyntax.Body, typ, label string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ && (label == "" || len(b.Labels) > 0 && b.Labels[0] == label) {
			out = append(out, b)
		}
	}
	return out
}

// traversal renders an expression that is a plain reference, e.g.
// "local.service_url", or "" if it is anything else.
func traversal(e hclsyntax.Expression) string {
	st, ok := e.(*hclsyntax.ScopeTraversalExpr)
	if !ok {
		return ""
	}
	parts := []string{st.Traversal.RootName()}
	for _, s := range st.Traversal[1:] {
		if a, ok := s.(hcl.TraverseAttr); ok {
			parts = append(parts, a.Name)
		}
	}
	return strings.Join(parts, ".")
}

// literal returns a constant string expression's value, or "".
func literal(t *testing.T, e hclsyntax.Expression) string {
	t.Helper()
	v, diags := e.Value(nil)
	if diags.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// TestOneFilePerConcern checks that each concern has its file holding its resources.
func TestOneFilePerConcern(t *testing.T) {
	files := parseAll(t)
	want := map[string][]string{
		"versions.tf":         nil,
		"variables.tf":        nil,
		"locals.tf":           nil,
		"outputs.tf":          nil,
		"apis.tf":             {"google_project_service"},
		"service_accounts.tf": {"google_service_account"},
		"iam.tf":              {"google_cloud_run_v2_service_iam_member", "google_project_iam_member", "google_service_account_iam_member"},
		"firestore.tf":        {"google_firestore_database", "google_firestore_index"},
		"tasks.tf":            {"google_cloud_tasks_queue"},
		"scheduler.tf":        {"google_cloud_scheduler_job"},
		"secrets.tf":          {"google_secret_manager_secret"},
		"run.tf":              {"google_cloud_run_v2_service"},
	}
	for name, types := range want {
		body, ok := files[name]
		if !ok {
			t.Errorf("%s/%s is missing", tfDir, name)
			continue
		}
		for _, typ := range types {
			if len(blocks(body, "resource", typ)) == 0 {
				t.Errorf("%s: no %s resource", name, typ)
			}
		}
	}
	for _, v := range []string{"project", "region", "stage", "image"} {
		if len(blocks(files["variables.tf"], "variable", v)) != 1 {
			t.Errorf("variables.tf: no variable %q", v)
		}
	}
	for _, o := range []string{"service_url", "runtime_service_account", "tasks_service_account", "scheduler_service_account"} {
		if len(blocks(files["outputs.tf"], "output", o)) != 1 {
			t.Errorf("outputs.tf: no output %q", o)
		}
	}
	if n := len(blocks(files["service_accounts.tf"], "resource", "google_service_account")); n != 3 {
		t.Errorf("service_accounts.tf: %d service accounts, want 3 (runtime, tasks, scheduler)", n)
	}
}

// TestIAMRoles checks the roles the service needs.
func TestIAMRoles(t *testing.T) {
	iam := parseAll(t)["iam.tf"]
	var roles []string
	for _, b := range iam.Blocks {
		if r, ok := b.Body.Attributes["role"]; ok {
			roles = append(roles, b.Labels[0]+" "+literal(t, r.Expr))
		}
	}
	for _, want := range []string{
		"google_cloud_run_v2_service_iam_member roles/run.invoker",
		"google_project_iam_member roles/cloudtasks.enqueuer",
		"google_project_iam_member roles/datastore.user",
		"google_service_account_iam_member roles/iam.serviceAccountUser",
	} {
		if !slices.Contains(roles, want) {
			t.Errorf("iam.tf lacks %s (has %v)", want, roles)
		}
	}
	var invokers []string
	for _, b := range blocks(iam, "resource", "google_cloud_run_v2_service_iam_member") {
		if r, ok := b.Body.Attributes["role"]; ok && literal(t, r.Expr) == "roles/run.invoker" {
			invokers = append(invokers, b.Labels[1])
		}
	}
	slices.Sort(invokers)
	if want := []string{"operator_invoker", "scheduler_invoker", "tasks_invoker", "viewer_invoker"}; !slices.Equal(invokers, want) {
		t.Errorf("iam.tf: run.invoker bindings %v, want %v (tasks, scheduler, and one per ALLOWED_OPERATORS and ALLOWED_VIEWERS entry)", invokers, want)
	}
	// People: every operator, and every viewer who is not an operator too
	// (two bindings of one member would fight over it).
	for name, want := range map[string][]string{
		"operator_invoker": {"var.allowed_operators"},
		"viewer_invoker":   {"setsubtract", "var.allowed_viewers", "var.allowed_operators"},
	} {
		bs := blocks(iam, "resource", "google_cloud_run_v2_service_iam_member")
		i := slices.IndexFunc(bs, func(b *hclsyntax.Block) bool { return b.Labels[1] == name })
		if i < 0 {
			continue
		}
		fe, ok := bs[i].Body.Attributes["for_each"]
		if !ok {
			t.Errorf("iam.tf: %s has no for_each", name)
			continue
		}
		src := string(fe.Expr.Range().SliceBytes(readTF(t, "iam.tf")))
		for _, w := range want {
			if !strings.Contains(src, w) {
				t.Errorf("iam.tf: %s for_each = %s; want it over %v", name, src, want)
			}
		}
	}
}

// TestFirestoreIndexes checks the composite indexes ListRuns needs.
func TestFirestoreIndexes(t *testing.T) {
	var got []string
	for _, idx := range blocks(parseAll(t)["firestore.tf"], "resource", "google_firestore_index") {
		var fields []string
		for _, f := range blocks(idx.Body, "fields", "") {
			fields = append(fields, literal(t, f.Body.Attributes["field_path"].Expr)+" "+literal(t, f.Body.Attributes["order"].Expr))
		}
		got = append(got, strings.Join(fields, ", "))
		if c := idx.Body.Attributes["collection"]; c == nil || traversal(c.Expr) != "var.ledger_collection" {
			t.Errorf("index %s: collection is not var.ledger_collection", idx.Labels[1])
		}
	}
	want := []string{
		"pipeline ASCENDING, created_at DESCENDING",
		"status ASCENDING, created_at DESCENDING",
		"pipeline ASCENDING, status ASCENDING, created_at DESCENDING",
		// Pending runs oldest first (backfill, the sweeper).
		"status ASCENDING, created_at ASCENDING",
		"pipeline ASCENDING, status ASCENDING, created_at ASCENDING",
		// Owed notifications by finish time.
		"notify ASCENDING, finished_at ASCENDING",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("firestore indexes:\n got %q\nwant %q", got, want)
	}
}

// TestSchedulerAudienceIsTheServiceURL checks every Scheduler job signs its
// token for the service URL exactly, and that the service expects the same.
func TestSchedulerAudienceIsTheServiceURL(t *testing.T) {
	files := parseAll(t)
	jobs := blocks(files["scheduler.tf"], "resource", "google_cloud_scheduler_job")
	if len(jobs) < 2 {
		t.Fatalf("scheduler.tf: %d jobs, want the per-pipeline jobs and the reconcile tick", len(jobs))
	}
	paths := map[string]bool{}
	for _, j := range jobs {
		name := j.Labels[1]
		for _, attr := range []string{"schedule", "time_zone", "attempt_deadline"} {
			if j.Body.Attributes[attr] == nil {
				t.Errorf("job %s: no %s", name, attr)
			}
		}
		if len(blocks(j.Body, "retry_config", "")) != 1 {
			t.Errorf("job %s: no retry_config", name)
		}
		targets := blocks(j.Body, "http_target", "")
		if len(targets) != 1 {
			t.Fatalf("job %s: no http_target", name)
		}
		tokens := blocks(targets[0].Body, "oidc_token", "")
		if len(tokens) != 1 {
			t.Fatalf("job %s: no oidc_token", name)
		}
		aud := tokens[0].Body.Attributes["audience"]
		if aud == nil || traversal(aud.Expr) != "local.service_url" {
			t.Errorf("job %s: the OIDC audience must be local.service_url exactly", name)
		}
		if sa := tokens[0].Body.Attributes["service_account_email"]; sa == nil || traversal(sa.Expr) != "google_service_account.scheduler.email" {
			t.Errorf("job %s: the OIDC account must be the scheduler service account", name)
		}
		uri, ok := targets[0].Body.Attributes["uri"].Expr.(*hclsyntax.TemplateExpr)
		if !ok || len(uri.Parts) != 2 || traversal(uri.Parts[0]) != "local.service_url" {
			t.Errorf("job %s: uri must be \"${local.service_url}/pipeline/...\"", name)
			continue
		}
		paths[literal(t, uri.Parts[1])] = true
	}
	for _, p := range []string{"/pipeline/start", "/pipeline/reconcile"} {
		if !paths[p] {
			t.Errorf("no Scheduler job calls %s (have %v)", p, paths)
		}
	}
	// The pipeline jobs take schedule and time zone from the pipeline files.
	for _, j := range jobs {
		if j.Labels[1] == "reconcile" {
			continue
		}
		if fe := j.Body.Attributes["for_each"]; fe == nil || traversal(fe.Expr) != "local.scheduled" {
			t.Errorf("job %s: for_each must be local.scheduled (read from the pipeline files)", j.Labels[1])
		}
		if s := j.Body.Attributes["schedule"]; traversal(s.Expr) != "each.value.schedule" {
			t.Errorf("job %s: schedule must come from the pipeline file", j.Labels[1])
		}
		if s := j.Body.Attributes["time_zone"]; traversal(s.Expr) != "each.value.time_zone" {
			t.Errorf("job %s: time_zone must come from the pipeline file", j.Labels[1])
		}
	}
	src, _ := os.ReadFile(filepath.Join(tfDir, "locals.tf"))
	if !strings.Contains(string(src), "yamldecode(file(") || !strings.Contains(string(src), "fileset(var.pipeline_dir") {
		t.Error("locals.tf: the pipelines must be read with yamldecode(file(...)) over fileset(var.pipeline_dir, ...)")
	}
}

// TestServiceEnv checks the Cloud Run service: SERVICE_URL is the same
// local.service_url the jobs use (no trailing slash), the invokers are
// allowed, and the image is left to gcloud run deploy.
func TestServiceEnv(t *testing.T) {
	files := parseAll(t)
	var url *hclsyntax.Attribute
	for _, l := range blocks(files["locals.tf"], "locals", "") {
		if a := l.Body.Attributes["service_url"]; a != nil {
			url = a
		}
	}
	if url == nil {
		t.Fatal("locals.tf: no local service_url")
	}
	tmpl, ok := url.Expr.(*hclsyntax.TemplateExpr)
	if !ok || !strings.HasPrefix(literal(t, tmpl.Parts[0]), "https://") || strings.HasSuffix(literal(t, tmpl.Parts[len(tmpl.Parts)-1]), "/") {
		t.Errorf("local.service_url must be an https URL without a trailing slash")
	}
	src, err := os.ReadFile(filepath.Join(tfDir, "run.tf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"SERVICE_URL               = local.service_url",
		"PIPELINE_BACKEND          = \"gcp\"",
		"TASKS_SERVICE_ACCOUNT     = google_service_account.tasks.email",
		"ALLOWED_INVOKERS          = join(\",\", [google_service_account.tasks.email, google_service_account.scheduler.email])",
		"template[0].containers[0].image",
		"args  = [\"serve\"]",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("run.tf lacks %s", want)
		}
	}
	if strings.Contains(string(src), "OIDC_AUDIENCE") {
		t.Error("run.tf sets OIDC_AUDIENCE; leave it unset so the audience is SERVICE_URL exactly")
	}
}
