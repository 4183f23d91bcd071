// Command chaos-pipeline is the pipeline binary with the "chaos" step kind
// (bodies counted in PIPELINE_DATA/bodies.log): the process the reliability
// suite kills and restarts.
package main

import (
	"os"
	"path/filepath"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/test/chaos"
)

func main() {
	os.Exit(app.Run(os.Args[1:], app.WithConfiguredSteps(func(reg *steps.Registry, cfg *app.Config) {
		chaos.Register(reg, filepath.Join(cfg.Data, chaos.BodyLogName), nil)
	})))
}
