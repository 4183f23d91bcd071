// Package example holds the step kinds of the example daily chain. They do
// real, small, local work under DATA_DIR/<pipeline>/<run key>/ (the run key
// is the run's date unless the run was started with its own key):
//
//	example.extract    writes orders.csv, a day of sample orders generated
//	                   deterministically from the date (param rows, default 200)
//	example.transform  reads orders.csv and writes summary.json: totals by
//	                   region and the top customers
//	example.report     reads the summaries and writes report.md
//
// Every step is idempotent: a re-run rewrites its file atomically (a temp file
// in the same directory, then a rename). A missing or malformed input fails
// the step permanently, with a message naming the file.
package example

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pipelinehq/pipeline/steps"
)

// Kind names registered by Register.
const (
	KindExtract   = "example.extract"
	KindTransform = "example.transform"
	KindReport    = "example.report"
)

// Register adds the example kinds to reg; their files live under dataDir.
func Register(reg *steps.Registry, dataDir string) {
	reg.Register(KindExtract, func(s map[string]any) (steps.Step, error) { return newExtract(dataDir, s) })
	reg.Register(KindTransform, func(s map[string]any) (steps.Step, error) { return newTransform(dataDir, s) })
	reg.Register(KindReport, func(s map[string]any) (steps.Step, error) { return newReport(dataDir, s) })
}

// RunDir is the directory holding the files of one run of a pipeline:
// DATA/PIPELINE/KEY, the key being the run date unless the run was given one.
func RunDir(dataDir string, in steps.Input) (string, error) {
	if in.Date.IsZero() {
		return "", steps.Permanent(errors.New("the run has no date"))
	}
	if in.Pipeline == "" || !filepath.IsLocal(in.Pipeline) || strings.ContainsAny(in.Pipeline, `/\`) {
		return "", steps.Permanent(fmt.Errorf("pipeline name %q cannot name a directory", in.Pipeline))
	}
	key := in.Key() // a run is its key: a --key run of a date must not write over the date's run
	if key == "" {
		key = in.DateString()
	}
	if !filepath.IsLocal(key) || strings.ContainsAny(key, `/\`) {
		return "", steps.Permanent(fmt.Errorf("run key %q cannot name a directory", key))
	}
	return filepath.Join(dataDir, in.Pipeline, key), nil
}

// fileSetting reads a file-name setting: a plain name inside the run directory.
func fileSetting(s *steps.Settings, key, def string) string {
	name := s.String(key, false)
	if name == "" {
		return def
	}
	if name != filepath.Base(name) || !filepath.IsLocal(name) || strings.HasPrefix(name, ".") {
		s.Problemf("%s %q must be a plain file name (no directories, not hidden)", key, name)
	}
	return name
}

func output(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	return b, nil
}

func checkCtx(ctx context.Context, kind string) error {
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}
