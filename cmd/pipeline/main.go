// Command pipeline runs daily job chains: the HTTP service that Cloud Run runs
// (serve), a one-shot local run of a pipeline (run), and operator tools. It is
// package app with the example step kinds; see examples/custom-step for a
// binary of your own.
package main

import (
	"os"

	"github.com/pipelinehq/pipeline/app"
)

func main() {
	os.Exit(app.Run(os.Args[1:], app.WithExampleSteps()))
}
