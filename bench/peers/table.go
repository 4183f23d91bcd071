package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// row is one peer's figures at one concurrency.
type row struct {
	peer, mode   string
	conc, chains int
	p50, p99     float64 // ms
	perSec, cpu  float64 // steps/s, µs of CPU per step
	fsyncs       float64 // fdatasync + fsync calls per step; -1 if not counted
	bare         float64 // ms: the bare bbolt commit the project's benchmark timed alongside (0: none)
}

// markdownTable reads the lines run.sh gathered and prints them as one
// Markdown table, with each peer's ratios to the project at the same
// concurrency. It understands four kinds of line:
//
//	machine fsync_ms=0.2 bbolt_commit_ms=0.4 loopback_http_ms=0.1     (-limits)
//	peer=asynq mode=in-memory chains=50 conc=1 p50_ms=… steps/s=… cpu_us/step=…   (a peer's run)
//	BenchmarkLocalStepToStep-2  50  …ns/op  1.1 p50_ms  …  cpu_us/step            (the project's go test -bench)
//	fsyncs peer=river mode=postgres conc=1 calls=1234 steps=500                     (run.sh's strace count)
func markdownTable(in string) (string, error) {
	var (
		rows    []*row
		machine string
		commit  float64
	)
	find := func(peer, mode string, conc int) *row {
		for _, r := range rows {
			if r.peer == peer && r.mode == mode && r.conc == conc {
				return r
			}
		}
		r := &row{peer: peer, mode: mode, conc: conc, fsyncs: -1}
		rows = append(rows, r)
		return r
	}
	for _, line := range strings.Split(in, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "machine "):
			machine = line
			commit = num(field(line, "bbolt_commit_ms"))
		case strings.HasPrefix(line, "peer="):
			r := find(field(line, "peer"), field(line, "mode"), int(num(field(line, "conc"))))
			r.chains = int(num(field(line, "chains")))
			r.p50, r.p99 = num(field(line, "p50_ms")), num(field(line, "p99_ms"))
			r.perSec, r.cpu = num(field(line, "steps/s")), num(field(line, "cpu_us/step"))
		case strings.HasPrefix(line, "fsyncs "):
			r := find(field(line, "peer"), field(line, "mode"), int(num(field(line, "conc"))))
			if steps := num(field(line, "steps")); steps > 0 {
				r.fsyncs = num(field(line, "calls")) / steps
			}
		case strings.HasPrefix(line, "BenchmarkLocal"):
			if err := benchRow(line, find); err != nil {
				return "", err
			}
		}
	}
	if len(rows) == 0 {
		return "", fmt.Errorf("table: no results in the input")
	}
	order := map[string]int{"pipeline local": 0, "asynq in-memory": 1, "asynq fsync-always": 2, "river postgres": 3}
	slices.SortStableFunc(rows, func(a, b *row) int {
		if a.conc != b.conc {
			return a.conc - b.conc
		}
		return order[a.peer+" "+a.mode] - order[b.peer+" "+b.mode]
	})
	var sb strings.Builder
	if machine != "" {
		fmt.Fprintf(&sb, "Machine limits: %s\n\n", strings.TrimSpace(strings.TrimPrefix(machine, "machine")))
	}
	sb.WriteString("| peer | mode | chains × concurrency | step-to-step p50 ms | p99 ms | steps/s | CPU µs/step | fsyncs/step | p50 ÷ pipeline's | steps/s ÷ pipeline's |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		var base *row
		for _, b := range rows {
			if b.peer == "pipeline" && b.conc == r.conc {
				base = b
			}
		}
		ratio := func(a, b float64) string {
			if base == nil || b == 0 {
				return ""
			}
			return fmt.Sprintf("%.2f", a/b)
		}
		fs := ""
		if r.fsyncs >= 0 {
			fs = fmt.Sprintf("%.2f", r.fsyncs)
		}
		p50r, rater := "", ""
		if base != nil && base != r {
			p50r, rater = ratio(r.p50, base.p50), ratio(r.perSec, base.perSec)
		}
		fmt.Fprintf(&sb, "| %s | %s | %d × %d | %.3f | %.3f | %.0f | %.0f | %s | %s | %s |\n",
			r.peer, r.mode, r.chains, r.conc, r.p50, r.p99, r.perSec, r.cpu, fs, p50r, rater)
	}
	// The goals are ratios to a bare commit: the one the project's benchmark
	// timed alongside its own loop (the same run, the same moment), else the
	// machine limits' commit measured before everything.
	for _, r := range rows {
		if r.peer != "pipeline" {
			continue
		}
		floor, of := r.bare, "a bare bbolt commit timed alongside"
		if floor == 0 {
			floor, of = commit, "a bare bbolt commit"
		}
		if floor == 0 {
			continue
		}
		also := ""
		if r.bare != 0 && commit != 0 {
			also = fmt.Sprintf("; %.1f× the machine limits' commit", r.p50/commit)
			if r.conc == 50 {
				also = fmt.Sprintf("; %.1f per the machine limits' commit", r.perSec*commit/1000)
			}
		}
		switch r.conc {
		case 1:
			fmt.Fprintf(&sb, "\npipeline, one chain at a time: step-to-step p50 = %.2f× %s (%.3f ms%s) (goal ≤ 2×)", r.p50/floor, of, floor, also)
		case 50:
			fmt.Fprintf(&sb, "\npipeline, 200 chains at 50: %.0f steps/s = %.2f per time of %s (%.3f ms%s) (goal ≥ 2)", r.perSec, r.perSec*floor/1000, of, floor, also)
		}
	}
	sb.WriteString("\n")
	return sb.String(), nil
}

// benchRow reads one line of the project's go test -bench output:
// BenchmarkLocalStepToStep (one chain at a time; an iteration is one chain)
// or BenchmarkLocalChainsConcurrencyN (an iteration is 200 chains).
func benchRow(line string, find func(peer, mode string, conc int) *row) error {
	f := strings.Fields(line)
	if len(f) < 4 {
		return nil
	}
	name := f[0]
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		name = name[:i]
	}
	iters, err := strconv.Atoi(f[1])
	if err != nil {
		return fmt.Errorf("table: %q: iterations: %w", line, err)
	}
	var r *row
	switch {
	case name == "BenchmarkLocalStepToStep":
		r = find("pipeline", "local", 1)
		r.chains = iters
	case strings.HasPrefix(name, "BenchmarkLocalChainsConcurrency"):
		conc, err := strconv.Atoi(strings.TrimPrefix(name, "BenchmarkLocalChainsConcurrency"))
		if err != nil {
			return nil
		}
		r = find("pipeline", "local", conc)
		r.chains = 200 * iters
	default:
		return nil
	}
	for i := 2; i+1 < len(f); i += 2 {
		v := num(f[i])
		switch f[i+1] {
		case "p50_ms":
			r.p50 = v
		case "p99_ms":
			r.p99 = v
		case "transitions/s", "steps/s":
			r.perSec = v
		case "cpu_us/step":
			r.cpu = v
		case "bare_commit_ms":
			r.bare = v
		case "ns/op":
			if name == "BenchmarkLocalStepToStep" && v > 0 {
				r.perSec = 10 / (v / 1e9)
			}
		}
	}
	return nil
}

func num(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}
