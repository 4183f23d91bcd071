// Command custom-step is a pipeline binary of your own: the stock command
// line, service and routes (package app), plus one step kind, "greet".
//
//	go run ./examples/custom-step run -f examples/custom-step/hello.yaml -p name=Ada
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/steps"
)

func main() {
	os.Exit(app.Run(os.Args[1:], app.WithSteps(register)))
}

// register adds this binary's step kinds to the built-in ones.
func register(reg *steps.Registry) {
	reg.Register("greet", newGreet)
}

// greeting is the output of a greet step; the next step reads it from its
// Inputs.
type greeting struct {
	Message string `json:"message"`
}

// newGreet builds a greet step from its settings in the pipeline file:
//
//	greet: {greeting: Hello}
//
// It greets the run parameter `name`, or repeats the greeting of the step
// before it.
func newGreet(settings map[string]any) (steps.Step, error) {
	s := steps.ReadSettings("greet", settings)
	word := s.String("greeting", true)
	if err := s.Err(); err != nil {
		return nil, err // a bad pipeline file: `pipeline validate` reports it
	}
	return steps.StepFunc(func(ctx context.Context, in steps.Input) (json.RawMessage, error) {
		for prev, raw := range in.Inputs {
			var g greeting
			if err := json.Unmarshal(raw, &g); err != nil {
				return nil, steps.Permanent(fmt.Errorf("output of %s: %w", prev, err))
			}
			return json.Marshal(greeting{Message: fmt.Sprintf("%s, and %s again", g.Message, word)})
		}
		name := in.Params["name"]
		if name == "" {
			// Permanent: retrying cannot help, so the step fails at once.
			return nil, steps.Permanent(errors.New("run parameter name is empty (pass -p name=...)"))
		}
		return json.Marshal(greeting{Message: fmt.Sprintf("%s, %s (%s)", word, name, in.DateString())})
	}), nil
}
