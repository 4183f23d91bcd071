package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestScriptGrantsInvokerToPeople runs deploy.sh --dry-run: the invokers,
// every operator and every viewer get run.invoker on the service, each member
// once (an email in both lists, a repeated one), and the service gets
// ALLOWED_VIEWERS and IAP_AUDIENCE as given.
func TestScriptGrantsInvokerToPeople(t *testing.T) {
	needTools(t, "bash")
	dir := t.TempDir()
	noSchedules := filepath.Join(dir, "pipeline")
	if err := os.WriteFile(noSchedules, []byte("#!/usr/bin/env bash\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join("gcloud", "deploy.sh"), "--dry-run", "--project", "acme", "--image", "img:1",
		"--pipeline-bin", noSchedules,
		"--operators", "alice@example.com, ci@acme.iam.gserviceaccount.com",
		"--viewers", "bob@example.com,alice@example.com,carol@example.com,bob@example.com",
		"--iap-audience", "/projects/123/global/backendServices/456")
	cmd.Env = append(os.Environ(), "ALLOWED_VIEWERS=", "ALLOWED_OPERATORS=", "IAP_AUDIENCE=", "DISCORD_WEBHOOK_URL=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deploy.sh --dry-run: %v\n%s", err, out)
	}
	var members []string
	for _, m := range regexp.MustCompile(`run services add-iam-policy-binding pipeline-dev .*--member (\S+) --role roles/run.invoker`).FindAllSubmatch(out, -1) {
		members = append(members, string(m[1]))
	}
	want := []string{
		"serviceAccount:pipeline-dev-tasks@acme.iam.gserviceaccount.com",
		"serviceAccount:pipeline-dev-scheduler@acme.iam.gserviceaccount.com",
		"user:alice@example.com",
		"serviceAccount:ci@acme.iam.gserviceaccount.com",
		"user:bob@example.com",
		"user:carol@example.com",
	}
	if !slices.Equal(members, want) {
		t.Errorf("run.invoker granted to\n %v\nwant\n %v\n%s", members, want, out)
	}
	deploy := regexp.MustCompile(`(?m)^\+ gcloud .* run deploy .*$`).Find(out)
	for _, w := range []string{`ALLOWED_VIEWERS=bob@example.com\,alice@example.com\,carol@example.com\,bob@example.com`, `IAP_AUDIENCE=/projects/123/global/backendServices/456`} {
		if !strings.Contains(string(deploy), w) {
			t.Errorf("run deploy lacks %s:\n%s", w, deploy)
		}
	}
}
