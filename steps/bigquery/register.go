package bigquery

import (
	"google.golang.org/api/option"

	"github.com/pipelinehq/pipeline/steps"
)

// Kind is the name pipeline files use for the kind.
const Kind = "bigquery.query"

// DefaultJobPrefix starts every job ID unless the job_prefix setting says
// otherwise.
const DefaultJobPrefix = "pipeline"

// Factory returns the kind's factory. The client is created on first use
// with Google's default credentials and opts (tests point it at a stand-in
// with option.WithEndpoint and option.WithoutAuthentication); every step
// the factory builds shares it.
func Factory(opts ...option.ClientOption) steps.Factory {
	svc := &lazyService{opts: opts}
	return func(settings map[string]any) (steps.Step, error) {
		c, err := readConfig(settings)
		if err != nil {
			return nil, err
		}
		return &queryStep{config: c, svc: svc}, nil
	}
}

// Register adds the kind to reg.
func Register(reg *steps.Registry, opts ...option.ClientOption) {
	reg.Register(Kind, Factory(opts...))
}
