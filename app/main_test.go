package app

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// Run's exit codes: 0 success, 1 the operation failed or found problems,
// 2 usage or configuration error; the message goes to stderr.
func TestRunExitCodes(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--version"}, 0, ""},
		{[]string{"validate", "-f", repoPipelines}, 0, ""},
		{[]string{"no-such-command"}, 2, "unexpected argument"},
		{[]string{"runs", "--since", "soon", "-f", repoPipelines, "--data", data}, 2, `--since "soon"`},
		{[]string{"serve", "--port", "70000", "-f", repoPipelines, "--data", data}, 2, "PORT: 70000 is not a port"},
		{[]string{"run", "--backend", "gcp", "-f", repoPipelines}, 2, "SERVICE_URL"},
		{[]string{"status", "daily@2026-01-01", "-f", repoPipelines, "--data", data}, 1, "not found"},
	} {
		var out, errOut bytes.Buffer
		code := Run(tc.args, WithExampleSteps(), WithOutput(&out, &errOut))
		if code != tc.code || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args, code, errOut.String(), tc.code, tc.msg)
		}
	}
}
