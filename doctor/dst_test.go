package doctor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/doctor"
)

func TestDSTGapIsAWarning(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip(err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gap := def("night", "Europe/Paris")
	gap.Schedule, gap.Location = "30 2 * * *", paris
	safe := def("morning", "Europe/Paris")
	safe.Location = paris
	utc := def("utc", "UTC")
	utc.Schedule, utc.Location = "30 2 * * *", time.UTC
	fs := doctor.DSTGapsFrom(from)(good(), append(daily(t), gap, safe, utc))
	if len(fs) != 1 {
		t.Fatalf("want one finding (pipeline night), got:\n%s", render(fs))
	}
	f := fs[0]
	if f.Severity != doctor.SeverityWarning || f.Subject != "pipeline night" || !strings.Contains(f.Problem, "2026-03-29") || !strings.Contains(f.Fix, "gcloud scheduler jobs update") {
		t.Fatalf("finding: %+v", f)
	}
}
