package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyedRunWritesUnderItsKey: a --key run of a date keeps its files apart
// from the date's own run, which it must not overwrite.
func TestKeyedRunWritesUnderItsKey(t *testing.T) {
	data := t.TempDir()
	if out, stderr, err := runArgs(t, "run", "daily", "--file", repoPipelines, "--data", data, "--date", "2026-03-14", "--param", "rows=25"); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out, stderr)
	}
	if out, stderr, err := runArgs(t, "run", "daily", "--file", repoPipelines, "--data", data, "--date", "2026-03-14", "--key", "retry-1", "--param", "rows=7"); err != nil {
		t.Fatalf("keyed run: %v\n%s\n%s", err, out, stderr)
	}
	read := func(key string) string {
		b, err := os.ReadFile(filepath.Join(data, "files", "daily", key, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if r := read("2026-03-14"); !strings.Contains(r, "25 orders") || !strings.Contains(r, "daily@2026-03-14`") {
		t.Errorf("the date's run's report was changed by the keyed run:\n%s", r)
	}
	if r := read("retry-1"); !strings.Contains(r, "7 orders") || !strings.Contains(r, "daily@retry-1`") || !strings.Contains(r, "2026-03-14") {
		t.Errorf("keyed run's report:\n%s", r)
	}
}
