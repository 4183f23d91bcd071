package main

import (
	"context"
	"flag"
	"fmt"
	"os"
)

func main() {
	redis := flag.String("redis", "", "Redis address for asynq (host:port); empty skips asynq")
	mode := flag.String("redis-mode", "redis", "how the Redis at -redis is configured, for the output (in-memory, fsync-always)")
	steps := flag.Int("steps", 10, "steps per chain")
	chains := flag.Int("chains", 200, "chains in the concurrent runs")
	lone := flag.Int("lone", 50, "chains run one at a time")
	limitsDir := flag.String("limits", "", "measure the machine's limits (fsync, bbolt commit, loopback HTTP) in this folder, then exit")
	flag.Parse()
	ctx := context.Background()
	if *limitsDir != "" {
		line, err := limits(*limitsDir, 500)
		if err != nil {
			fmt.Fprintln(os.Stderr, "peers:", err)
			os.Exit(1)
		}
		fmt.Println(line)
		return
	}
	if *redis == "" {
		fmt.Fprintln(os.Stderr, "peers: nothing to run: give -redis HOST:PORT (bench/peers/run.sh starts Redis)")
		os.Exit(2)
	}
	for _, r := range []struct{ n, conc int }{{*lone, 1}, {*chains, 10}, {*chains, 50}} {
		res, err := runAsynq(ctx, *redis, *mode, *steps, r.n, r.conc)
		if err != nil {
			fmt.Fprintf(os.Stderr, "peers: asynq %s, %d chains at %d: %v\n", *mode, r.n, r.conc, err)
			os.Exit(1)
		}
		fmt.Println(res)
	}
}
