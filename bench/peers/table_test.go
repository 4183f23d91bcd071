package main

import (
	"strings"
	"testing"
)

// The table joins the four kinds of line run.sh gathers, orders the rows,
// and divides each peer's figures by the project's at the same concurrency.
func TestMarkdownTableJoinsRunsCountsAndTheProjectsBenchmarks(t *testing.T) {
	in := strings.Join([]string{
		"machine fsync_ms=0.200 bbolt_commit_ms=0.500 loopback_http_ms=0.080",
		"BenchmarkLocalStepToStep-2   \t      50\t  20000000 ns/op\t  0.5 claim_p50_ms\t 1000 cpu_us/step\t 2.000 p50_ms\t 4.000 p99_ms",
		"BenchmarkLocalChainsConcurrency50-2 \t 1\t 1000000000 ns/op\t 0.400 bare_commit_ms\t 500 cpu_us/step\t 10.0 p50_ms\t 20.0 p99_ms\t 2000 transitions/s",
		"fsyncs peer=pipeline mode=local conc=1 calls=3570 steps=510",
		"peer=river mode=postgres chains=50 conc=1 p50_ms=3.000 p99_ms=6.000 steps/s=400 cpu_us/step=1200",
		"peer=asynq mode=fsync-always chains=200 conc=50 p50_ms=20.000 p99_ms=40.000 steps/s=1000 cpu_us/step=400",
		"peer=asynq mode=in-memory chains=200 conc=50 p50_ms=5.000 p99_ms=8.000 steps/s=8000 cpu_us/step=200",
		"fsyncs peer=river mode=postgres conc=1 calls=1000 steps=500",
		"a line of something else",
	}, "\n")
	out, err := markdownTable(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"| pipeline | local | 50 × 1 | 2.000 | 4.000 | 500 | 1000 | 7.00 |  |  |",
		"| river | postgres | 50 × 1 | 3.000 | 6.000 | 400 | 1200 | 2.00 | 1.50 | 0.80 |",
		"| pipeline | local | 200 × 50 | 10.000 | 20.000 | 2000 | 500 |  |  |  |",
		"| asynq | in-memory | 200 × 50 | 5.000 | 8.000 | 8000 | 200 |  | 0.50 | 4.00 |",
		"| asynq | fsync-always | 200 × 50 | 20.000 | 40.000 | 1000 | 400 |  | 2.00 | 0.50 |",
	}
	last := -1
	for _, w := range want {
		i := strings.Index(out, w)
		if i < 0 {
			t.Fatalf("table lacks row\n%s\nin\n%s", w, out)
		}
		if i < last {
			t.Fatalf("row out of order: %s\nin\n%s", w, out)
		}
		last = i
	}
	for _, w := range []string{
		"Machine limits: fsync_ms=0.200 bbolt_commit_ms=0.500 loopback_http_ms=0.080",
		"step-to-step p50 = 4.00× a bare bbolt commit (0.500 ms) (goal ≤ 2×)",
		"2000 steps/s = 0.80 per time of a bare bbolt commit timed alongside (0.400 ms; 1.0 per the machine limits' commit) (goal ≥ 2)",
	} {
		if !strings.Contains(out, w) {
			t.Fatalf("table lacks %q in\n%s", w, out)
		}
	}
}

func TestMarkdownTableWithoutResultsIsAnError(t *testing.T) {
	if _, err := markdownTable("machine fsync_ms=0.2\n"); err == nil {
		t.Fatal("no error for an input without results")
	}
}
