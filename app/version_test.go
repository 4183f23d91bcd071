package app

import (
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.25.0", Main: debug.Module{Path: "github.com/pipelinehq/pipeline", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := versionText(bi, true)
	for _, want := range []string{"github.com/pipelinehq/pipeline v1.2.3", "revision:   abc123 (with uncommitted changes)", "build time: 2026-11-30T10:00:00Z", "go:         go1.25.0"} {
		if !strings.Contains(got, want) {
			t.Errorf("version lacks %q:\n%s", want, got)
		}
	}
	if got := versionText(&debug.BuildInfo{Main: debug.Module{Path: "x"}}, true); !strings.Contains(got, "revision:   unknown") {
		t.Errorf("no VCS info:\n%s", got)
	}
}

// The built binary answers --version with exit 0 and its revision.
func TestBinaryVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out, err := exec.Command(binary(t), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/pipelinehq/pipeline") || !strings.Contains(string(out), "revision:") {
		t.Fatalf("--version:\n%s", out)
	}
}

// Each subcommand's help shows its own flags first and the shared
// configuration in its own groups; the top-level help names serve's --port
// and --reconcile-every.
func TestHelpGroupsSharedFlags(t *testing.T) {
	out, _, err := runArgs(t, "serve", "--help")
	if ExitCode(err) != ExitOK {
		t.Fatalf("serve --help: exit %d", ExitCode(err))
	}
	port, group, gcp := strings.Index(out, "--port="), strings.Index(out, "Configuration ("), strings.Index(out, "gcp backend and notifications")
	if port < 0 || group < 0 || gcp < 0 || port > group || group > gcp || strings.Index(out, "--service-url") < gcp {
		t.Fatalf("serve --help: own flags, then the configuration group, then gcp:\n%s", out)
	}
	out, _, _ = runArgs(t, "runs", "--help")
	if i, j := strings.Index(out, "--since="), strings.Index(out, "Configuration ("); i < 0 || j < 0 || i > j {
		t.Fatalf("runs --help:\n%s", out)
	}
	out, _, _ = runArgs(t, "--help")
	for _, want := range []string{"--port", "--reconcile-every", "--version", "--dev"} {
		if !strings.Contains(out, want) {
			t.Errorf("pipeline --help lacks %s", want)
		}
	}
}
