package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The stock binary knows the bigquery.query kind: validate accepts a step
// of it waiting up to hours, without Google credentials (the client is made
// on first use), and names every bad setting of one.
func TestValidateKnowsBigQueryQuery(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "none.json"))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`
name: daily
time_zone: UTC
steps:
  - name: merge
    kind: bigquery.query
    timeout: 6h
    bigquery.query:
      project: my-project
      location: EU
      query: "MERGE ds.t T USING ds.s S ON T.id = S.id WHEN NOT MATCHED THEN INSERT ROW"
`), 0o644)
	out, stderr, err := runArgs(t, "validate", "--file", good)
	if err != nil || !strings.Contains(out, "ok: 1 pipeline(s)") {
		t.Fatalf("validate: %v\n%s%s", err, out, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`
name: daily
time_zone: UTC
steps:
  - name: merge
    kind: bigquery.query
    bigquery.query: {location: EU, write_disposition: WRITE_APPEND}
`), 0o644)
	_, stderr, err = runArgs(t, "validate", "--file", bad)
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	for _, want := range []string{"bigquery.query: project is required", "bigquery.query: query is required", "write_disposition applies only with a destination_table"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
