package cloudtasks

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"

	"github.com/pipelinehq/pipeline/pipeline"
)

func TestDispatchDeadline(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{0, 10 * time.Minute},
		{time.Second, 31 * time.Second},
		{-time.Second, 10 * time.Minute},
		{time.Nanosecond, 30*time.Second + time.Nanosecond},
		{5 * time.Minute, 5*time.Minute + 30*time.Second},
		{29*time.Minute + 30*time.Second, 30 * time.Minute},
		{45 * time.Minute, 30 * time.Minute},
	}
	for _, tt := range tests {
		if got := DispatchDeadline(tt.in); got != tt.want {
			t.Errorf("DispatchDeadline(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func testQueue(now time.Time) *Queue {
	return &Queue{
		parent:  "projects/p-12345/locations/europe-west1/queues/steps",
		baseURL: "https://svc.example.com",
		email:   "tasks@p-12345.iam.gserviceaccount.com",
		aud:     "https://svc.example.com/",
		now:     func() time.Time { return now },
	}
}

func TestTaskShape(t *testing.T) {
	now := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	q := testQueue(now)
	in := pipeline.Task{
		Name:     pipeline.TaskName("daily@2026-03-01", "extract", 0),
		Payload:  pipeline.TaskPayload{RunID: "daily@2026-03-01", Step: "extract", Date: "2026-03-01", Params: map[string]string{"k": "v"}},
		Deadline: 2 * time.Minute,
		Delay:    90 * time.Second,
	}
	task, err := q.task(in)
	if err != nil {
		t.Fatalf("task: %v", err)
	}
	if want := q.parent + "/tasks/" + in.Name; task.GetName() != want {
		t.Errorf("Name = %q, want %q", task.GetName(), want)
	}
	hr := task.GetHttpRequest()
	if got, want := hr.GetUrl(), "https://svc.example.com/pipeline/steps/extract"; got != want {
		t.Errorf("Url = %q, want %q", got, want)
	}
	if hr.GetHttpMethod() != cloudtaskspb.HttpMethod_POST {
		t.Errorf("method = %s, want POST", hr.GetHttpMethod())
	}
	if got := hr.GetHeaders()["Content-Type"]; got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	var body pipeline.TaskPayload
	if err := json.Unmarshal(hr.GetBody(), &body); err != nil {
		t.Fatalf("body: %v", err)
	}
	if body.RunID != in.Payload.RunID || body.Step != "extract" || body.Params["k"] != "v" || body.Date != "2026-03-01" {
		t.Errorf("body = %+v, want %+v", body, in.Payload)
	}
	oidc := hr.GetOidcToken()
	if oidc.GetServiceAccountEmail() != q.email || oidc.GetAudience() != q.aud {
		t.Errorf("OIDC token = %v, want email %q audience %q", oidc, q.email, q.aud)
	}
	if got := task.GetDispatchDeadline().AsDuration(); got != 2*time.Minute+DeadlineMargin {
		t.Errorf("DispatchDeadline = %s", got)
	}
	if got := task.GetScheduleTime().AsTime(); !got.Equal(now.Add(90 * time.Second)) {
		t.Errorf("ScheduleTime = %s, want %s", got, now.Add(90*time.Second))
	}

	in.Delay = 0
	task, err = q.task(in)
	if err != nil {
		t.Fatalf("task without delay: %v", err)
	}
	if task.GetScheduleTime() != nil {
		t.Errorf("ScheduleTime set without a delay: %v", task.GetScheduleTime())
	}
}

func TestTaskRefusesBadInput(t *testing.T) {
	q := testQueue(time.Now())
	good := pipeline.Task{Name: "abc-def_1", Payload: pipeline.TaskPayload{RunID: "p@k", Step: "s"}}
	tests := []struct {
		name   string
		modify func(*pipeline.Task)
		want   error
	}{
		{"empty name", func(t *pipeline.Task) { t.Name = "" }, pipeline.ErrInvalid},
		{"slash in name", func(t *pipeline.Task) { t.Name = "a/b" }, pipeline.ErrInvalid},
		{"dot in name", func(t *pipeline.Task) { t.Name = "a.b" }, pipeline.ErrInvalid},
		{"long name", func(t *pipeline.Task) { t.Name = strings.Repeat("a", 501) }, pipeline.ErrInvalid},
		{"no step", func(t *pipeline.Task) { t.Payload.Step = "" }, pipeline.ErrInvalid},
		{"step with slash", func(t *pipeline.Task) { t.Payload.Step = "../admin" }, pipeline.ErrInvalid},
		{"negative delay", func(t *pipeline.Task) { t.Delay = -time.Second }, pipeline.ErrInvalid},
		{"negative deadline", func(t *pipeline.Task) { t.Deadline = -time.Second }, pipeline.ErrInvalid},
		{"over 100 KB", func(t *pipeline.Task) {
			t.Payload.Params = map[string]string{"big": strings.Repeat("x", MaxTaskSize)}
		}, pipeline.ErrTooLarge},
	}
	if _, err := q.task(good); err != nil {
		t.Fatalf("good task refused: %v", err)
	}
	long := good
	long.Name = strings.Repeat("a", 500)
	if _, err := q.task(long); err != nil {
		t.Errorf("500-character name refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good
			tt.modify(&in)
			_, err := q.task(in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("task(%+v) error = %v, want %v", in, err, tt.want)
			}
		})
	}
}
