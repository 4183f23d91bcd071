package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// serviceEnvWanted is what the service needs on the gcp backend, plus what
// the doctor reads from the service's environment.
var serviceEnvWanted = []string{
	"PIPELINE_BACKEND", "GOOGLE_CLOUD_PROJECT", "SERVICE_URL", "CLOUD_TASKS_LOCATION", "CLOUD_TASKS_QUEUE",
	"TASKS_SERVICE_ACCOUNT", "ALLOWED_INVOKERS", "ALLOWED_OPERATORS", "ALLOWED_VIEWERS", "IAP_AUDIENCE", "FIRESTORE_DATABASE", "LEDGER_COLLECTION",
	"DISCORD_WEBHOOK_URL", "SCHEDULER_SERVICE_ACCOUNT", "CLOUD_RUN_TIMEOUT",
}

// terraformServiceEnv lists the names of the Cloud Run service's env in
// run.tf: the keys of the dynamic env blocks' for_each maps, and the names of
// env blocks with a literal name (the secret-backed ones).
func terraformServiceEnv(t *testing.T) []string {
	t.Helper()
	var names []string
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for _, blk := range b.Blocks {
			if blk.Type == "dynamic" && len(blk.Labels) == 1 && blk.Labels[0] == "env" {
				if fe, ok := blk.Body.Attributes["for_each"]; ok {
					if obj, ok := fe.Expr.(*hclsyntax.ObjectConsExpr); ok {
						for _, item := range obj.Items {
							if k, ok := item.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); ok {
								names = append(names, hcl.ExprAsKeyword(k.Wrapped))
							}
						}
					}
				}
				for _, c := range blocks(blk.Body, "content", "") {
					if n, ok := c.Body.Attributes["name"]; ok {
						if s := literal(t, n.Expr); s != "" {
							names = append(names, s)
						}
					}
				}
			}
			walk(blk.Body)
		}
	}
	walk(parseAll(t)["run.tf"])
	slices.Sort(names)
	return names
}

// scriptServiceEnv lists the names deploy.sh passes to --set-env-vars (the
// env_vars array) and --set-secrets.
func scriptServiceEnv(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("gcloud", "deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)\nenv_vars=\((.*?)\n\)`).FindSubmatch(src)
	if block == nil {
		t.Fatal("deploy.sh: no env_vars=( ... ) array")
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*"([A-Z_]+)=`).FindAllSubmatch(block[1], -1) {
		names = append(names, string(m[1]))
	}
	for _, m := range regexp.MustCompile(`--set-secrets "([A-Z_]+)=`).FindAllSubmatch(src, -1) {
		if !slices.Contains(names, string(m[1])) {
			names = append(names, string(m[1]))
		}
	}
	slices.Sort(names)
	return names
}

// TestBothDeployPathsSetTheSameServiceEnv: Terraform and the gcloud script
// give the service the same variables, every one the service and the doctor
// need among them (ALLOWED_OPERATORS included: without it the operator routes
// are closed).
func TestBothDeployPathsSetTheSameServiceEnv(t *testing.T) {
	tf, sh := terraformServiceEnv(t), scriptServiceEnv(t)
	if !slices.Equal(tf, sh) {
		t.Errorf("the deploy paths set different variables:\n run.tf    %v\n deploy.sh %v", tf, sh)
	}
	for _, want := range serviceEnvWanted {
		if !slices.Contains(tf, want) {
			t.Errorf("run.tf does not set %s on the service", want)
		}
		if !slices.Contains(sh, want) {
			t.Errorf("deploy.sh does not set %s on the service", want)
		}
	}
}

// TestDeployDocListsEveryTerraformFile: docs/deploy.md names every file of
// deploy/terraform.
func TestDeployDocListsEveryTerraformFile(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(tfDir, "*.tf"))
	if len(names) == 0 {
		t.Fatal("no .tf files")
	}
	for _, name := range names {
		if !regexp.MustCompile("`" + regexp.QuoteMeta(filepath.Base(name)) + "`").Match(doc) {
			t.Errorf("docs/deploy.md does not list %s", filepath.Base(name))
		}
	}
}
