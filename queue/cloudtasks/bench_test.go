package cloudtasks_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/cloudtasks"
	"github.com/pipelinehq/pipeline/queue/cloudtasks/emulator"
)

// BenchmarkEnqueueDeliver measures enqueue through real gRPC to the emulator
// and delivery over HTTP with an OIDC token, b.N tasks from parallel callers.
// It prints queue calls per task, the figure the cost model counts.
func BenchmarkEnqueueDeliver(b *testing.B) {
	emu, err := emulator.Start(b.Context(), emulator.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer emu.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	q, err := cloudtasks.New(b.Context(), cloudtasks.Config{
		Project: "bench-project", Location: "europe-west1", Queue: "steps",
		ServiceURL: srv.URL, ServiceAccount: "tasks@bench-project.iam.gserviceaccount.com",
		EmulatorHost: emu.Addr(),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()

	var seq atomic.Int64
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			run := "bench@" + strconv.FormatInt(seq.Add(1), 10)
			t := pipeline.Task{Name: pipeline.TaskName(run, "step", 0), Payload: pipeline.TaskPayload{RunID: run, Step: "step"}}
			if err := q.Enqueue(b.Context(), t); err != nil {
				b.Error(err)
				return
			}
		}
	})
	enqueued := time.Since(start)
	n := int64(b.N)
	if err := emu.WaitFor(b.Context(), func(s emulator.Stats) bool { return s.Succeeded >= n }); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	s := emu.Stats()
	b.ReportMetric(float64(s.Created+s.AlreadyExists+s.Faulted)/float64(n), "creates/task")
	b.ReportMetric(float64(s.Dispatches)/float64(n), "dispatches/task")
	b.ReportMetric(float64(n)/enqueued.Seconds(), "enqueues/s")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "delivered/s")
}
