package doctor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/doctor"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// An asynchronous step's timeout bounds its wait, not a request: the doctor
// accepts hours for it and still rejects them for a synchronous step.
func TestDeadlinesOfAsynchronousSteps(t *testing.T) {
	async, err := steps.NewHTTP(map[string]any{"url": "https://jobs.example/start", "async": true})
	if err != nil {
		t.Fatal(err)
	}
	long := step("export", 6*time.Hour, 3)
	long.Kind, long.Body = "http", async
	if fs := doctor.Deadlines(good(), []*pipeline.Definition{def("nightly", "UTC", long)}); len(fs) != 0 {
		t.Fatalf("async step with a 6h timeout: %s", render(fs))
	}
	if d := doctor.TaskDeadline(long, 30*time.Second); d != pipeline.AsyncRequestTimeout+15*time.Second {
		t.Fatalf("task deadline of an async step = %s", d)
	}
	sync := step("load", 6*time.Hour, 3)
	fs := doctor.Deadlines(good(), []*pipeline.Definition{def("nightly", "UTC", sync)})
	if len(fs) == 0 || !strings.Contains(render(fs), "above Cloud Tasks' maximum") {
		t.Fatalf("sync step with a 6h timeout: %s", render(fs))
	}
}
