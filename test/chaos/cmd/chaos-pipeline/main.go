// Command chaos-pipeline is the pipeline binary with the "chaos" step kind
// (bodies counted in PIPELINE_DATA/bodies.log): the process the reliability
// suite kills and restarts. With CHAOS_CRASH_POINT set (see
// chaos.ParseCrashPoint) it kills itself with SIGKILL right after the ledger
// writes of that crash point have committed.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/test/chaos"
)

func main() {
	opts := []app.Option{app.WithConfiguredSteps(func(reg *steps.Registry, cfg *app.Config) {
		chaos.Register(reg, filepath.Join(cfg.Data, chaos.BodyLogName), nil)
	})}
	if v := os.Getenv(chaos.CrashPointEnv); v != "" {
		p, err := chaos.ParseCrashPoint(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", chaos.CrashPointEnv, err)
			os.Exit(2)
		}
		opts = append(opts, app.WithWrappers(app.Wrappers{Ledger: func(l pipeline.Ledger) pipeline.Ledger {
			return p.Wrap(l, os.Stderr, killSelf)
		}}))
	}
	os.Exit(app.Run(os.Args[1:], opts...))
}

// killSelf ends the process as kill -9 would: nothing after it runs.
func killSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
