package doctor

import (
	"errors"
	"fmt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// PipelineFiles turns the error of pipeline.LoadFiles into findings, one per
// problem, so that the doctor reports them beside its configuration checks
// instead of stopping at them.
func PipelineFiles(err error) []Finding {
	var out []Finding
	for _, e := range flatten(err) {
		f := Finding{
			Severity: SeverityError, Check: "pipelines", Problem: e.Error(),
			Why: "the service does not start (and no run is created) until every pipeline file loads",
			Fix: "fix the file, then check it with: pipeline validate",
		}
		var p *pipeline.Problem
		if errors.As(e, &p) {
			f.Subject, f.Problem = p.File, p.Msg
			if p.Line > 0 {
				f.Subject = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
			}
			f.Fix = "edit " + f.Subject + ", then check it with: pipeline validate -f " + p.File
		}
		out = append(out, f)
	}
	return out
}

// flatten lists the leaves of a tree of joined errors.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
