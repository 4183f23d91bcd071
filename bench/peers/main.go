package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	redis := flag.String("redis", "", "Redis address for asynq (host:port)")
	mode := flag.String("redis-mode", "redis", "how the Redis at -redis is configured, for the output (in-memory, fsync-always)")
	postgres := flag.String("postgres", "", "PostgreSQL URL for River (postgres://user@host:port/db)")
	migrate := flag.Bool("migrate", false, "with -postgres: run River's migrations, then exit")
	serverPID := flag.Int("server-pid", 0, "PID of the Redis or PostgreSQL server: its CPU time (and its children's) is added to the CPU per step")
	only := flag.String("only", "all", "which runs: lone (one chain at a time), c10, c50 (200 chains at concurrency 10, 50) or all")
	steps := flag.Int("steps", 10, "steps per chain")
	chains := flag.Int("chains", 200, "chains in the concurrent runs")
	lone := flag.Int("lone", 50, "chains run one at a time")
	limitsDir := flag.String("limits", "", "measure the machine's limits (fsync, bbolt commit, loopback HTTP) in this folder, then exit")
	table := flag.String("table", "", "print the Markdown table of the result lines in this file (the output of the runs, the project's go test -bench lines and fsync counts), then exit")
	flag.Parse()
	ctx := context.Background()
	if err := run(ctx, opts{redis: *redis, mode: *mode, postgres: *postgres, migrate: *migrate, serverPID: *serverPID,
		only: *only, steps: *steps, chains: *chains, lone: *lone, limits: *limitsDir, table: *table}); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

type opts struct {
	redis, mode, postgres string
	migrate               bool
	serverPID             int
	only                  string
	steps, chains, lone   int
	limits, table         string
}

func run(ctx context.Context, o opts) error {
	switch {
	case o.table != "":
		b, err := os.ReadFile(o.table)
		if err != nil {
			return fmt.Errorf("table: %w", err)
		}
		out, err := markdownTable(string(b))
		if err != nil {
			return err
		}
		fmt.Print(out)
		return nil
	case o.limits != "":
		line, err := limits(o.limits, 500)
		if err != nil {
			return err
		}
		fmt.Println(line)
		return nil
	case o.migrate && o.postgres != "":
		return riverMigrate(ctx, o.postgres)
	}
	var runOne func(n, conc int) (result, error)
	switch {
	case o.redis != "":
		runOne = func(n, conc int) (result, error) { return runAsynq(ctx, o.redis, o.mode, o.steps, n, conc) }
	case o.postgres != "":
		runOne = func(n, conc int) (result, error) { return runRiver(ctx, o.postgres, o.steps, n, conc) }
	default:
		return fmt.Errorf("nothing to run: give -redis HOST:PORT or -postgres URL (bench/peers/run.sh starts both servers)")
	}
	all := []struct {
		name    string
		n, conc int
	}{{"lone", o.lone, 1}, {"c10", o.chains, 10}, {"c50", o.chains, 50}}
	ran := false
	for _, r := range all {
		if o.only != "all" && o.only != r.name {
			continue
		}
		ran = true
		cpu0, err := cpuTime(o.serverPID)
		if err != nil {
			return err
		}
		res, err := runOne(r.n, r.conc)
		if err != nil {
			return fmt.Errorf("%d chains at %d: %w", r.n, r.conc, err)
		}
		cpu1, err := cpuTime(o.serverPID)
		if err != nil {
			return err
		}
		res.cpu = cpu1 - cpu0
		fmt.Println(res)
	}
	if !ran {
		return fmt.Errorf("-only %q: want one of lone, c10, c50, all", o.only)
	}
	return nil
}

// field is the value of key=value in a result line, or "".
func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return v
		}
	}
	return ""
}
