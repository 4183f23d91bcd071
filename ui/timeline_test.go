package ui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// A run whose 10 steps each used a full history of attempts, every one with
// an error as long as the history keeps, still renders under the page bound,
// with every attempt on the timeline.
func TestRunPageWithFullHistoriesStaysSmall(t *testing.T) {
	e := newEnv(t, 10)
	ctx := context.Background()
	date := e.now.Format(time.DateOnly)
	created := e.now.Add(-time.Hour)
	r := pipeline.Run{ID: pipeline.RunID("web", date), Pipeline: "web", Key: date, Date: date, Status: pipeline.RunRunning,
		Trigger: "scheduler", CreatedAt: created, StartedAt: created, UpdatedAt: created}
	var srs []pipeline.StepRun
	for i := range 10 {
		srs = append(srs, pipeline.StepRun{RunID: r.ID, Step: fmt.Sprintf("s%02d", i), Status: pipeline.StepPending, Generation: 1, MaxAttempts: 100})
	}
	if _, _, err := e.led.CreateRun(ctx, r, srs); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("upstream said: no", pipeline.MaxAttemptError/16)
	for i := range srs {
		cur, err := e.led.GetSteps(ctx, r.ID, srs[i].Step)
		if err != nil {
			t.Fatal(err)
		}
		s := cur[0]
		for n := 1; n <= pipeline.MaxHistory+3; n++ {
			start := created.Add(time.Duration(i*100+n) * time.Second)
			s.Status, s.Attempts, s.StartedAt, s.FinishedAt = pipeline.StepRunning, n, start, time.Time{}
			if s, err = e.led.UpdateStep(ctx, s); err != nil {
				t.Fatal(err)
			}
			s.Status, s.FinishedAt, s.Error = pipeline.StepRetrying, start.Add(time.Second), fmt.Sprintf("attempt %d: %s", n, long)
			if s, err = e.led.UpdateStep(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	code, body := e.do(request{path: "/ui/runs/" + r.ID, token: e.vwToken})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if n := strings.Count(body, ` data-n="`); n != 10*pipeline.MaxHistory {
		t.Errorf("%d attempts on the timeline, want %d", n, 10*pipeline.MaxHistory)
	}
	if len(body) > maxPageBytes {
		t.Errorf("run page is %d bytes, over %d", len(body), maxPageBytes)
	}
	t.Logf("run page with 10 steps x %d attempts: %d bytes", pipeline.MaxHistory, len(body))
}
