package app

import (
	"strings"
	"testing"
)

// PIPELINE_AUTH=off on the gcp backend is allowed only against both emulators.
func TestAuthOffOnGCPOnlyAgainstEmulators(t *testing.T) {
	gcp := func(tasksEmu, fsEmu string) Config {
		return Config{File: []string{"p.yaml"}, Backend: "gcp", Auth: "off", LogLevel: "info", LeaseGrace: durationOf(1),
			Project: "demo", ServiceURL: "http://127.0.0.1:8080", TasksLocation: "local", TasksQueue: "q",
			TasksAccount: "tasks@demo.iam.gserviceaccount.com", TasksEmulator: tasksEmu, firestoreEmulator: fsEmu}
	}
	for _, tc := range []struct {
		name          string
		tasks, fs     string
		wantAuthError bool
	}{
		{"both emulators", "127.0.0.1:8123", "127.0.0.1:8089", false},
		{"no Firestore emulator", "127.0.0.1:8123", "", true},
		{"no Cloud Tasks emulator", "", "127.0.0.1:8089", true},
		{"real services", "", "", true},
	} {
		c := gcp(tc.tasks, tc.fs)
		err := c.Validate()
		if tc.wantAuthError {
			if err == nil || !strings.Contains(err.Error(), "PIPELINE_AUTH") ||
				!strings.Contains(err.Error(), "CLOUD_TASKS_EMULATOR_HOST") || !strings.Contains(err.Error(), "FIRESTORE_EMULATOR_HOST") {
				t.Errorf("%s: err = %v, want PIPELINE_AUTH refused naming both emulator variables", tc.name, err)
			}
		} else if err != nil {
			t.Errorf("%s: err = %v, want none", tc.name, err)
		}
	}
}

// The gcp backend with auth off against the emulators runs the daily chain
// although no token could be verified: the issuer is unreachable and the
// callers send none. The start-up says so loudly.
func TestGCPBackendWithAuthOffAgainstEmulators(t *testing.T) {
	g := startGCPStackWith(t, func(c *Config) {
		c.Auth = "off"
		c.Issuer = "http://127.0.0.1:1" // never asked
		c.AllowedInvokers, c.AllowedOperators = nil, nil
	})
	code, out := g.call("POST", "/pipeline/start", "", map[string]string{"pipeline": "daily", "date": "2026-11-24"}, nil)
	if code != 201 {
		t.Fatalf("start without a token = %d %v", code, out)
	}
	if run := g.waitRun("daily@2026-11-24"); run["status"] != "succeeded" {
		t.Fatalf("run = %v", run)
	}
	if code, out := g.call("GET", "/pipeline/runs", "", nil, nil); code != 200 {
		t.Fatalf("runs without a token = %d %v", code, out)
	}
}

// On the command line: serve refuses auth off on the gcp backend without the
// emulators, naming the rule, with the usage/configuration exit code.
func TestServeRefusesAuthOffOnGCPWithoutEmulators(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	_, stderr, err := runArgs(t, "serve", "--backend", "gcp", "--auth", "off", "--project", "demo",
		"--service-url", "http://127.0.0.1:8080", "--tasks-location", "local", "--tasks-service-account", "tasks@demo.iam.gserviceaccount.com",
		"--tasks-emulator", "127.0.0.1:8123")
	if err == nil || !strings.Contains(err.Error()+stderr, "FIRESTORE_EMULATOR_HOST") {
		t.Fatalf("err = %v\n%s", err, stderr)
	}
}
