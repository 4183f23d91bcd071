package doctor_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/doctor"
)

func TestServiceAccountRule(t *testing.T) {
	for _, tc := range []struct {
		email, problem string // problem "" means accepted
	}{
		{"pipeline-tasks@demo-pipeline.iam.gserviceaccount.com", ""},
		{"abcdef@acme-prod.iam.gserviceaccount.com", ""},                         // 6 characters: the shortest id
		{"a23456789012345678901234567890@acme-prod.iam.gserviceaccount.com", ""}, // 30: the longest
		{"sa-two@my-project.example.com.iam.gserviceaccount.com", ""},            // a domain-scoped project
		{"123456789012-compute@developer.gserviceaccount.com", ""},               // default compute account
		{"acme-prod@appspot.gserviceaccount.com", ""},                            // App Engine default account
		{"tasks@demo.iam.gserviceaccount.com", `account id "tasks" has 5 characters; Google's account ids have 6–30`},
		{"a234567890123456789012345678901@acme.iam.gserviceaccount.com", `has 31 characters`},
		{"Pipeline@acme-prod.iam.gserviceaccount.com", "other than lowercase letters"},
		{"pipe_line@acme-prod.iam.gserviceaccount.com", "other than lowercase letters"},
		{"1pipeline@acme-prod.iam.gserviceaccount.com", "must start with a letter"},
		{"pipeline-@acme-prod.iam.gserviceaccount.com", "not end with a hyphen"},
		{"alice@example.com", `domain "example.com" is not a service account's`},
		{"pipeline-tasks", "is not an email"},
		{"alice-compute@developer.gserviceaccount.com", "not a default compute account"},
	} {
		got := doctor.ServiceAccountProblem(tc.email)
		if (tc.problem == "") != (got == "") || !strings.Contains(got, tc.problem) {
			t.Errorf("%s: problem %q, want %q", tc.email, got, tc.problem)
		}
	}
}

// TestDocumentedServiceAccountsPass: every service account email the README
// and docs show (deploy scripts' variables filled in) passes the doctor's
// own check, so a user copying them gets no warning.
func TestDocumentedServiceAccountsPass(t *testing.T) {
	emailRE := regexp.MustCompile(`[A-Za-z0-9$_{}.-]+@[A-Za-z0-9$_{}.-]*gserviceaccount\.com`)
	fill := strings.NewReplacer("${NAME}", "pipeline", "$NAME", "pipeline", "${PROJECT}", "acme-prod", "$PROJECT", "acme-prod",
		"${SERVICE}", "pipeline", "$SERVICE", "pipeline", "$id", "pipeline-run")
	files := []string{filepath.Join("..", "README.md")}
	for _, pat := range []string{"docs/*.md", "deploy/*/*"} {
		m, _ := filepath.Glob(filepath.Join("..", pat))
		files = append(files, m...)
	}
	seen := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range emailRE.FindAllString(string(data), -1) {
			e = fill.Replace(e)
			if strings.ContainsAny(e, "${}") || strings.HasPrefix(e, "service-") { // unknown variables; Google's own service agents
				continue
			}
			seen++
			if p := doctor.ServiceAccountProblem(e); p != "" {
				t.Errorf("%s shows %s, which the doctor warns about: %s", f, e, p)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no service account email found in README.md or docs: the scan is broken")
	}
}
