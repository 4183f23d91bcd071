package app

import (
	"io"
	"path/filepath"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/example"
)

// Option changes what Main and Run assemble.
type Option func(*options)

// WithSteps registers step kinds of your own, next to the built-in ones
// (http, noop, sleep, cloudrun.job, bigquery.query). Pipeline files name
// them in a step's kind.
func WithSteps(register func(reg *steps.Registry)) Option {
	return func(o *options) {
		o.steps = append(o.steps, func(reg *steps.Registry, _ *Config) { register(reg) })
	}
}

// WithConfiguredSteps is WithSteps for step kinds that need the service's
// configuration, for example the data directory (Config.Data) to keep files in.
func WithConfiguredSteps(register func(reg *steps.Registry, cfg *Config)) Option {
	return func(o *options) { o.steps = append(o.steps, register) }
}

// WithExampleSteps registers the example kinds (example.extract,
// example.transform, example.report) that the repository's pipelines use;
// their files live under PIPELINE_DATA/files. The stock binary has them.
func WithExampleSteps() Option {
	return WithConfiguredSteps(registerExampleSteps)
}

func registerExampleSteps(reg *steps.Registry, cfg *Config) {
	example.Register(reg, filepath.Join(cfg.Data, "files"))
}

// WithOutput sets where commands write (default os.Stdout and os.Stderr).
func WithOutput(stdout, stderr io.Writer) Option {
	return func(o *options) { o.stdout, o.stderr = stdout, stderr }
}

// Wrappers decorate the parts the service is assembled from, as it assembles
// them: each function gets the part the backend built and returns the one the
// service uses instead. A nil field leaves its part as built. Fault-injection
// and reliability tests use them (test/chaos); so can instrumentation.
type Wrappers struct {
	// Ledger wraps the run ledger (bbolt or Firestore); the Discord
	// notifier's store is the wrapped ledger too.
	Ledger func(pipeline.Ledger) pipeline.Ledger
	// Queue wraps the step queue (local queue or Cloud Tasks).
	Queue func(pipeline.Queue) pipeline.Queue
	// Notifier wraps all notifiers together (log, Discord, extra).
	Notifier func(pipeline.Notifier) pipeline.Notifier
}

// WithWrappers decorates the ledger, queue and notifier the service uses.
func WithWrappers(w Wrappers) Option {
	return func(o *options) { o.wrap = w }
}

// WithClock sets the clock the service's decisions and records read: the
// orchestrator (step and run times, leases, the sweeper's owed
// notifications, overdue runs and schedule checks) and the Discord
// notifier's pacing and post claims. Default time.Now. Reliability tests
// give instances sharing one ledger clocks that disagree (test/chaos).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.clock = now }
}
