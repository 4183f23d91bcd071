package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/app"
)

// runMain runs this binary's command line in-process.
func runMain(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	err := app.Main(context.Background(), args, app.WithSteps(register), app.WithOutput(&out, &out))
	return out.String(), app.ExitCode(err)
}

func TestCustomStepRunsEndToEnd(t *testing.T) {
	data := t.TempDir()
	out, code := runMain(t, "run", "-f", "hello.yaml", "--data", data, "--date", "2026-03-14", "-p", "name=Ada")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"run hello@2026-03-14: succeeded",
		`{"message":"Hello, Ada (2026-03-14)"}`,
		`{"message":"Hello, Ada (2026-03-14), and hi again"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

func TestCustomStepFailsPermanentlyWithoutAName(t *testing.T) {
	out, code := runMain(t, "run", "-f", "hello.yaml", "--data", t.TempDir(), "--date", "2026-03-14", "-p", "name=")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	// Permanent: one attempt of two, and the step's own message.
	if !strings.Contains(out, "1/2") || !strings.Contains(out, "run parameter name is empty") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestValidateKnowsTheCustomKind(t *testing.T) {
	out, code := runMain(t, "validate", "-f", "hello.yaml")
	if code != 0 || !strings.Contains(out, "ok: 1 pipeline(s)") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// A greet step without its greeting setting is a problem in the file.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\nsteps:\n  - {name: g, kind: greet}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runMain(t, "validate", "-f", bad)
	if code != 1 || !strings.Contains(out, "greeting is required") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// The stock kinds of the example binary are not registered here.
	out, code = runMain(t, "validate", "-f", "../../pipelines/daily.yaml")
	if code != 1 || !strings.Contains(out, "example.extract") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
