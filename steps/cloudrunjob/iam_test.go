package cloudrunjob_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/cloudrunjob"
)

// grantsAndInterval is what `pipeline doctor` asks of an asynchronous kind.
type grantsAndInterval interface {
	IAMGrants() []steps.IAMGrant
	CheckInterval() time.Duration
}

// The step names the roles its calls need on its own job, and says how to
// find the job's service account, which its settings do not name; its
// check interval is its check_interval setting (0: the default).
func TestIAMGrantsAndCheckInterval(t *testing.T) {
	reg := steps.NewRegistry()
	cloudrunjob.Register(reg, cloudrunjob.NewClients())
	s := settings()
	s["check_interval"] = "5m"
	st, err := reg.Build(cloudrunjob.Kind, s)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := st.(grantsAndInterval)
	if !ok {
		t.Fatalf("%T does not name its roles and check interval", st)
	}
	if got := g.CheckInterval(); got != 5*time.Minute {
		t.Errorf("check interval %s, want 5m", got)
	}
	grants := g.IAMGrants()
	var got []string
	for _, gr := range grants {
		got = append(got, gr.Role+" on "+gr.Resource)
		if gr.Why == "" {
			t.Errorf("grant %s says not why", gr.Role)
		}
	}
	want := []string{
		"roles/run.jobsExecutorWithOverrides on projects/acme/locations/europe-west1/jobs/load",
		"roles/run.viewer on projects/acme/locations/europe-west1/jobs/load",
		"roles/iam.serviceAccountUser on the service account of job projects/acme/locations/europe-west1/jobs/load",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("grants:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if note := grants[len(grants)-1].Why; !strings.Contains(note, "gcloud run jobs describe load --project acme --region europe-west1") {
		t.Errorf("the service account grant does not say how to find the account: %s", note)
	}

	delete(s, "check_interval")
	st, err = reg.Build(cloudrunjob.Kind, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.(grantsAndInterval).CheckInterval(); got != 0 {
		t.Errorf("check interval without the setting %s, want 0 (the orchestrator's default)", got)
	}
}
