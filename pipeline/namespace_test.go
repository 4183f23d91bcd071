package pipeline_test

import (
	"io"
	"log/slog"
	"regexp"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

var taskNameRE = regexp.MustCompile(`^[0-9a-f]{16}-[A-Za-z0-9_-]+-g[0-9]+$`)

func TestTaskNamesAreNamespaced(t *testing.T) {
	if pipeline.TaskName("daily@2026-11-23", "extract", 1) != pipeline.TaskNameIn("", "daily@2026-11-23", "extract", 1) {
		t.Fatal("TaskName is not TaskNameIn with no namespace")
	}
	seen := map[string]string{}
	for _, ns := range []string{"", "projects/p/databases/(default)/documents/runs", "projects/p/databases/(default)/documents/runs-staging", "projects/p/databases/other/documents/runs", "bolt/0123"} {
		n := pipeline.TaskNameIn(ns, "daily@2026-11-23", "weird step/name!", 1)
		if n != pipeline.TaskNameIn(ns, "daily@2026-11-23", "weird step/name!", 1) {
			t.Fatalf("namespace %q: not deterministic", ns)
		}
		if !taskNameRE.MatchString(n) || len(n) > 500 {
			t.Fatalf("namespace %q: task name %q is not a hash-prefixed [A-Za-z0-9_-] name", ns, n)
		}
		if other, ok := seen[n]; ok {
			t.Fatalf("namespaces %q and %q share the task name %s", ns, other, n)
		}
		seen[n] = ns
	}
}

// Two deployments whose ledgers share one queue enqueue distinct tasks for
// the same run: each run's task is on the queue, none swallowed as "already
// exists" by the other's.
func TestLedgersSharingAQueueDoNotShareTaskNames(t *testing.T) {
	prod, staging := newHarness(t, chainYAML), newHarness(t, chainYAML)
	orch, err := pipeline.New(pipeline.Config{
		Catalog: staging.orch.Catalog(), Ledger: staging.ledger, Queue: prod.queue,
		Now: staging.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*pipeline.Orchestrator{prod.orch, orch} {
		if _, err := o.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
			t.Fatal(err)
		}
	}
	if tasks := prod.queue.take(); len(tasks) != 2 || tasks[0].Name == tasks[1].Name {
		t.Fatalf("queue holds %d task(s) for two runs in two ledgers: %+v", len(tasks), tasks)
	}
	// Config.Namespace overrides the ledger's.
	a, _ := pipeline.New(pipeline.Config{Catalog: prod.orch.Catalog(), Ledger: prod.ledger, Queue: prod.queue, Namespace: "x"})
	b, _ := pipeline.New(pipeline.Config{Catalog: prod.orch.Catalog(), Ledger: staging.ledger, Queue: prod.queue, Namespace: "x"})
	if a.TaskName("chain@2026-11-23", "a", 1) != b.TaskName("chain@2026-11-23", "a", 1) {
		t.Fatal("Config.Namespace does not set the namespace")
	}
}
