package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/internal/fsemu"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/cloudtasks"
	"github.com/pipelinehq/pipeline/queue/cloudtasks/emulator"
	"github.com/pipelinehq/pipeline/steps"
)

// BenchmarkGCPTransitionCost prints the billed operations of the gcp backend:
// Firestore document reads and writes and Cloud Tasks CreateTask calls per
// linear step transition (goal: at most 2 + 2 + 1) and per run of a chain of
// ten no-op steps, on the Firestore emulator and the Cloud Tasks emulator.
//
//	go test -run '^$' -bench GCPTransitionCost ./app
func BenchmarkGCPTransitionCost(b *testing.B) {
	b.Setenv("FIRESTORE_EMULATOR_HOST", fsemu.Host(b))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emu, err := emulator.Start(ctx, emulator.Config{MaxAttempts: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer emu.Close()
	client, ops := fsemu.NewClient(b)
	led := firestoreledger.New(client, fsemu.Collection(b))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	q, err := cloudtasks.New(ctx, cloudtasks.Config{Project: "demo-pipeline", Location: "local", Queue: "bench",
		ServiceURL: base, ServiceAccount: tasksSA, EmulatorHost: emu.Addr()})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	file := filepath.Join(b.TempDir(), "chain.yaml")
	yaml := "name: chain10\nsteps:\n  - {name: s1, kind: noop, after: []}\n"
	for i := 2; i <= 10; i++ {
		yaml += fmt.Sprintf("  - {name: s%d, kind: noop}\n", i)
	}
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	catalog, err := pipeline.LoadFiles([]string{file}, steps.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	orch, err := pipeline.New(pipeline.Config{Catalog: catalog, Ledger: led, Queue: q, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Audience: base, Issuer: emu.IssuerURL(), Allowed: []string{tasksSA, schedulerSA}})
	if err != nil {
		b.Fatal(err)
	}
	h, err := pipeline.NewHandler(pipeline.ServerConfig{Orchestrator: orch, Auth: v, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()

	// A queue whose tasks go nowhere (a closed port; the emulator drops them
	// after one attempt), so that a test can deliver them by hand and count
	// exactly what one step transition costs.
	dead, err := cloudtasks.New(ctx, cloudtasks.Config{Project: "demo-pipeline", Location: "local", Queue: "manual",
		ServiceURL: "http://127.0.0.1:9", ServiceAccount: tasksSA, EmulatorHost: emu.Addr()})
	if err != nil {
		b.Fatal(err)
	}
	defer dead.Close()
	manual, err := pipeline.New(pipeline.Config{Catalog: catalog, Ledger: led, Queue: dead, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	creates := func() int64 { st := emu.Stats(); return st.Created + st.AlreadyExists + st.Faulted }

	var linR, linW, linC, linN float64 // linear transitions s1..s9
	var finR, finW, finC float64       // the last step (finishes the run)
	var runR, runW, runC float64       // whole runs dispatched by Cloud Tasks
	var runDur time.Duration
	base0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Counted by hand, transition by transition.
		date := base0.AddDate(0, 0, 2*i).Format(time.DateOnly)
		res, err := manual.Start(ctx, pipeline.StartRequest{Pipeline: "chain10", Date: date})
		if err != nil {
			b.Fatal(err)
		}
		for k := 1; k <= 10; k++ {
			ops.Reset()
			c0 := creates()
			p := pipeline.TaskPayload{RunID: res.Run.ID, Step: fmt.Sprintf("s%d", k), Generation: 1, Date: date}
			out, err := manual.HandleStep(ctx, p, pipeline.Delivery{})
			if err != nil || out.Outcome != pipeline.OutcomeSucceeded {
				b.Fatalf("s%d: %+v %v", k, out, err)
			}
			// Notifications (the final one's record) are sent in the
			// background: count them with the step that handed them over.
			if err := manual.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			r, w, c := float64(ops.Reads()), float64(ops.Writes()), float64(creates()-c0)
			if k < 10 {
				linR, linW, linC, linN = linR+r, linW+w, linC+c, linN+1
			} else {
				finR, finW, finC = finR+r, finW+w, finC+c
			}
		}
		// The whole run, through real Cloud Tasks dispatch over HTTP.
		date = base0.AddDate(0, 0, 2*i+1).Format(time.DateOnly)
		ops.Reset()
		c0 := creates()
		t0 := time.Now()
		res, err = orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain10", Date: date})
		if err != nil {
			b.Fatal(err)
		}
		if err := emu.WaitFor(ctx, func(st emulator.Stats) bool { return st.Created+st.AlreadyExists-c0 >= 10 && st.Pending == 0 }); err != nil {
			b.Fatal(err)
		}
		runDur += time.Since(t0)
		if err := orch.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		r, err := led.GetRun(ctx, res.Run.ID)
		if err != nil || r.Status != pipeline.RunSucceeded {
			b.Fatalf("run %s: %s %v", res.Run.ID, r.Status, err)
		}
		runR += float64(ops.Reads()) - float64(len(r.Steps)+1) // minus this check's own GetRun
		runW += float64(ops.Writes())
		runC += float64(creates() - c0)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(linR/linN, "reads/transition")
	b.ReportMetric(linW/linN, "writes/transition")
	b.ReportMetric(linC/linN, "createtask/transition")
	b.ReportMetric(finR/n, "reads/last-step")
	b.ReportMetric(finW/n, "writes/last-step")
	b.ReportMetric(finC/n, "createtask/last-step")
	b.ReportMetric(runR/n, "reads/run")
	b.ReportMetric(runW/n, "writes/run")
	b.ReportMetric(runC/n, "createtask/run")
	b.ReportMetric(float64(runDur.Milliseconds())/n, "ms/run")
	b.ReportMetric(0, "ns/op")
}
