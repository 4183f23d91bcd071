package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// describeJSON is the shape of `gcloud run services describe --format json`
// (Knative serving v1) for a service deployed by either path: plain values,
// an empty value (omitted by the API), and the Discord webhook from Secret
// Manager.
const describeJSON = `{
  "apiVersion": "serving.knative.dev/v1",
  "kind": "Service",
  "metadata": {"name": "pipeline-dev"},
  "spec": {"template": {"spec": {
    "containerConcurrency": 20,
    "serviceAccountName": "pipeline-dev-run@acme.iam.gserviceaccount.com",
    "containers": [{
      "image": "europe-west1-docker.pkg.dev/acme/pipeline/pipeline:abc",
      "args": ["serve"],
      "env": [
        {"name": "PIPELINE_BACKEND", "value": "gcp"},
        {"name": "SERVICE_URL", "value": "https://pipeline-dev-123.europe-west1.run.app"},
        {"name": "ALLOWED_INVOKERS", "value": "pipeline-dev-tasks@acme.iam.gserviceaccount.com,pipeline-dev-scheduler@acme.iam.gserviceaccount.com"},
        {"name": "ALLOWED_OPERATORS", "value": "alice@example.com"},
        {"name": "DISCORD_MENTION"},
        {"name": "DISCORD_WEBHOOK_URL", "valueFrom": {"secretKeyRef": {"key": "latest", "name": "pipeline-dev-discord-webhook"}}}
      ]
    }]
  }}}
}`

// webhook has characters a careless quoting would break.
const webhook = `https://discord.com/api/webhooks/123/to'k"en$x`

// stubGcloud puts a gcloud on PATH that answers the describe with
// describeJSON and the secret access with webhook (or fails it when
// secretFails), and returns the PATH.
func stubGcloud(t *testing.T, secretFails bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "describe.json"), []byte(describeJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "webhook"), []byte(webhook), 0o644); err != nil {
		t.Fatal(err)
	}
	fail := "0"
	if secretFails {
		fail = "1"
	}
	script := `#!/usr/bin/env bash
d=$(dirname "$0")
case "$*" in
  "run services describe pipeline-dev --project acme --region europe-west1 --format json") cat "$d/describe.json" ;;
  "secrets versions access latest --secret pipeline-dev-discord-webhook --project acme")
    if [ ` + fail + ` = 1 ]; then echo "PERMISSION_DENIED" >&2; exit 1; fi
    cat "$d/webhook" ;;
  *) echo "stub gcloud: unexpected: $*" >&2; exit 3 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "gcloud"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH")
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
				t.Fatalf("%s is not installed and CI=true: this test must run", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// TestServiceEnvExportsSecretBackedVariables: docs/deploy.md's way to load
// the service's env for the doctor keeps DISCORD_WEBHOOK_URL, which the
// service reads from Secret Manager (a jq filter on .value alone dropped it,
// and the doctor then warned that the webhook was not set).
func TestServiceEnvExportsSecretBackedVariables(t *testing.T) {
	needTools(t, "bash", "jq")
	path := stubGcloud(t, false)
	cmd := exec.Command("bash", "-c", `set -e; eval "$(gcloud/service-env.sh --project acme --region europe-west1 --stage dev)"; `+
		`printf '%s\n' "$PIPELINE_BACKEND" "$SERVICE_URL" "$ALLOWED_INVOKERS" "$ALLOWED_OPERATORS" "${DISCORD_MENTION-unset}" "$DISCORD_WEBHOOK_URL" "$K_SERVICE"`)
	cmd.Env = append(os.Environ(), "PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("service-env.sh: %v\n%s", err, out)
	}
	want := strings.Join([]string{
		"gcp",
		"https://pipeline-dev-123.europe-west1.run.app",
		"pipeline-dev-tasks@acme.iam.gserviceaccount.com,pipeline-dev-scheduler@acme.iam.gserviceaccount.com",
		"alice@example.com",
		"",
		webhook,
		"pipeline-dev",
	}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("exported env:\n got %q\nwant %q", out, want)
	}
}

// TestServiceEnvFailsWholeWhenASecretCannotBeRead: no partial env to eval,
// and the message names the secret and the role.
func TestServiceEnvFailsWholeWhenASecretCannotBeRead(t *testing.T) {
	needTools(t, "bash", "jq")
	cmd := exec.Command("gcloud/service-env.sh", "--project", "acme", "--stage", "dev")
	cmd.Env = append(os.Environ(), "PATH="+stubGcloud(t, true))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("service-env.sh succeeded though the secret could not be read")
	}
	if stdout.Len() != 0 {
		t.Errorf("printed a partial env: %q", stdout.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "pipeline-dev-discord-webhook") || !strings.Contains(msg, "roles/secretmanager.secretAccessor") {
		t.Errorf("stderr does not name the secret and the role: %q", msg)
	}
}
