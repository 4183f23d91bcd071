package app

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// get calls a route of a local service with an optional bearer token.
func get(t *testing.T, addr, path, token string) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// `pipeline token` prints a token that a local `serve` with auth on accepts.
func TestTokenIsAcceptedByALocalServe(t *testing.T) {
	s := serveInProcess(t)
	if code := get(t, s.addr, "/pipeline/runs", ""); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d, want 401", code)
	}
	out, stderr, err := runArgs(t, "token", "--data", s.data)
	if err != nil {
		t.Fatalf("token: %v\n%s", err, stderr)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("stdout is not one JWT: %q", out)
	}
	if code := get(t, s.addr, "/pipeline/runs", tok); code != http.StatusOK {
		t.Fatalf("with the token: %d, want 200", code)
	}
	// Another identity is verified but not on the local allowlist.
	out, _, err = runArgs(t, "token", "--data", s.data, "--email", "someone@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if code := get(t, s.addr, "/pipeline/runs", strings.TrimSpace(out)); code != http.StatusForbidden {
		t.Fatalf("token for another email: %d, want 403", code)
	}
	// Another audience is refused.
	out, _, err = runArgs(t, "token", "--data", s.data, "--audience", "https://elsewhere.example")
	if err != nil {
		t.Fatal(err)
	}
	if code := get(t, s.addr, "/pipeline/runs", strings.TrimSpace(out)); code != http.StatusUnauthorized {
		t.Fatalf("token for another audience: %d, want 401", code)
	}
}

// Without the key (no serve has used this data directory) the error names
// the path and the next step, and creates nothing.
func TestTokenWithoutAKey(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	_, _, err := runArgs(t, "token", "--data", data)
	if ExitCode(err) != ExitFailed {
		t.Fatalf("err = %v, want exit 1", err)
	}
	for _, want := range []string{filepath.Join(data, "local-issuer.pem"), "pipeline serve", "--data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, serr := os.Stat(data); serr == nil {
		t.Fatalf("%s was created", data)
	}
}
