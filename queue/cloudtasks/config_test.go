package cloudtasks

import (
	"errors"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

func validConfig() Config {
	return Config{
		Project:        "my-project",
		Location:       "europe-west1",
		Queue:          "pipeline-steps",
		ServiceURL:     "https://pipeline-abc-ew.a.run.app",
		ServiceAccount: "tasks@my-project.iam.gserviceaccount.com",
	}
}

func TestValidateAcceptsGoodConfig(t *testing.T) {
	cfg := validConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	cfg.EmulatorHost = "localhost:8123"
	cfg.Audience = "https://pipeline.example.com/"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate with emulator and audience: %v", err)
	}
	if got, want := cfg.QueuePath(), "projects/my-project/locations/europe-west1/queues/pipeline-steps"; got != want {
		t.Errorf("QueuePath = %q, want %q", got, want)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // one substring per expected problem
	}{
		{
			name: "zero",
			cfg:  Config{},
			want: []string{"project", "location", "queue", "SERVICE_URL", "TASKS_SERVICE_ACCOUNT"},
		},
		{
			name: "malformed",
			cfg: Config{
				Project: "My_Project", Location: "Europe West", Queue: "steps/x",
				ServiceURL: "ftp://host/x?y=1", ServiceAccount: "not an email",
				Audience: " aud", EmulatorHost: "localhost",
			},
			want: []string{`project "My_Project"`, `location "Europe West"`, `queue "steps/x"`,
				"scheme must be http or https", "not an email", "surrounding spaces", "CLOUD_TASKS_EMULATOR_HOST"},
		},
		{
			name: "url without host",
			cfg:  func() Config { c := validConfig(); c.ServiceURL = "https:///steps"; return c }(),
			want: []string{"no host"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted a bad config")
			}
			if !errors.Is(err, pipeline.ErrInvalid) {
				t.Errorf("error does not wrap pipeline.ErrInvalid: %v", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
