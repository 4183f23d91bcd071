package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The stock binary knows the cloudrun.job kind: validate accepts a step of
// it waiting hours, without Google credentials (its clients are created on
// first use), and names every bad setting.
func TestValidateKnowsCloudRunJobs(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`
name: nightly
time_zone: UTC
steps:
  - name: load
    kind: cloudrun.job
    timeout: 6h
    cloudrun.job: {project: acme, region: europe-west1, job: nightly-load, args: ["--date={{.Date}}"]}
`), 0o644)
	out, stderr, err := runArgs(t, "validate", "--file", good)
	if err != nil || !strings.Contains(out, "ok: 1 pipeline(s)") {
		t.Fatalf("validate: %v\n%s%s", err, out, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`
name: nightly
time_zone: UTC
steps:
  - name: load
    kind: cloudrun.job
    cloudrun.job: {region: europe-west1, job: jobs/nightly-load, task_count: 0}
`), 0o644)
	_, stderr, err = runArgs(t, "validate", "--file", bad)
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	for _, want := range []string{"project is required", `job "jobs/nightly-load"`, "task_count 0"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
