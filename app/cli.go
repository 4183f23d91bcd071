package app

import (
	"context"
	"io"
	"os"

	"github.com/alecthomas/kong"
)

// cli is the command line: global configuration plus one subcommand. The
// configuration, --version and serve are serveCLI's, embedded: one
// definition serves both grammars.
type cli struct {
	Serving serveCLI `embed:""`

	Run           runCmd           `cmd:"" help:"Run a pipeline once on the embedded backends, printing each step, and exit 0 on success, 1 on failure."`
	Validate      validateCmd      `cmd:"" help:"Check pipeline files and list every problem at once."`
	Doctor        doctorCmd        `cmd:"" help:"Check the deployment's configuration (audience, invokers, deadlines, time zones, Discord) and, with credentials, the live queue, Scheduler jobs and invoker IAM; print a fix for each problem; exit 1 on errors."`
	Schedules     schedulesCmd     `cmd:"" help:"Print each scheduled pipeline's Cloud Scheduler job: name, schedule, time zone, attempt deadline (TSV, or --json)."`
	Token         tokenCmd         `cmd:"" help:"Print an ID token from the local issuer (the key in the data directory), to call a local serve with auth on: curl -H \"Authorization: Bearer $(pipeline token)\" ..."`
	TasksEmulator tasksEmulatorCmd `cmd:"" name:"tasks-emulator" help:"Run a Cloud Tasks v2 emulator (gRPC) that dispatches over HTTP with OIDC tokens, for the gcp backend on one machine."`

	// Operator tools: local store by default, PIPELINE_BACKEND=gcp, or --url.
	Enqueue  enqueueCmd  `cmd:"" help:"Enqueue one step of a run ad hoc (--date D or --run RUN); it obeys the gate and chains on unless --only; --force runs it again in a new generation."`
	Status   statusCmd   `cmd:"" help:"Print a run and its steps: status, attempts, generation, duration, error or output."`
	Runs     runsCmd     `cmd:"" help:"List runs, newest first (--pipeline, --since 7d, --status)."`
	Watch    watchCmd    `cmd:"" help:"Show a run's progress until it ends; exit 1 if it failed."`
	Resume   resumeCmd   `cmd:"" help:"Re-enqueue a run from its failed step(s), keeping what succeeded."`
	Cancel   cancelCmd   `cmd:"" help:"Cancel a run: no further step starts."`
	Backfill backfillCmd `cmd:"" help:"Create one run per date from --from to --to, at most --max-parallel at once; repeating it creates nothing new."`
	Stats    statsCmd    `cmd:"" help:"Per pipeline and step: runs, success rate, average and p95 duration (--since 7d)."`
	Pause    pauseCmd    `cmd:"" help:"Pause a pipeline's schedule (--reason R): scheduled starts are skipped and no missed-start alert fires; on GCP its Cloud Scheduler job is paused too."`
	Unpause  unpauseCmd  `cmd:"" help:"Resume a paused pipeline's schedule (and its Cloud Scheduler job on GCP)."`
	UI       uiCmd       `cmd:"" name:"ui" help:"Open the dashboard of a service (--url): a proxy on 127.0.0.1 that adds your identity token to each request; prints the address to open."`
}

// serveCLI is the command line of `pipeline serve` alone: the global
// configuration, --version and serve. Cloud Run starts the service with it
// on every cold start, and kong builds its parser from every command's
// flags: the whole CLI (cli, which embeds this) costs ~10 ms here, this one a
// fraction. Anything it cannot parse goes to the whole CLI.
type serveCLI struct {
	Config

	Version kong.VersionFlag `name:"version" help:"Print the module version, VCS revision and build time, and exit."`

	Serve serveCmd `cmd:"" help:"Run the HTTP service (what Cloud Run runs); in local mode also the queue and the cron. Its flags: --port (PORT, 8080), --host, --dev (auth off on 127.0.0.1), --reconcile-every (PIPELINE_RECONCILE_EVERY, 5m), --[no-]cron."`
}

// runCLI parses args and runs the chosen command.
func runCLI(ctx context.Context, args []string, o *options) error {
	stdout, stderr := o.stdout, o.stderr
	if len(args) > 0 && args[0] == "serve" {
		// The fast path: parsed quietly; help, --version and errors
		// (anything but a parse that succeeded) are the whole CLI's.
		var c serveCLI
		exit := -1
		parser, err := newParser(ctx, &c, io.Discard, io.Discard, &exit)
		if err == nil {
			kctx, err := parser.Parse(args)
			if err == nil && exit < 0 {
				return runParsed(kctx, &c.Config, o)
			}
		}
	}
	var c cli
	exit := -1
	parser, err := newParser(ctx, &c, stdout, stderr, &exit)
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 {
		return exitCode{code: exit}
	}
	if err != nil {
		parser.Errorf("%s", err)
		return exitCode{code: 2}
	}
	return runParsed(kctx, &c.Serving.Config, o)
}

// newParser is the kong parser of grammar (cli or serveCLI); an exit kong
// asks for (help, --version, a usage error) is stored in *exit.
func newParser(ctx context.Context, grammar any, stdout, stderr io.Writer, exit *int) (*kong.Kong, error) {
	return kong.New(grammar,
		kong.Name("pipeline"),
		kong.Description("Daily job chains on Cloud Scheduler, Cloud Tasks and Firestore — or on one machine."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { *exit = code }),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Vars{"version": buildVersion()},
		kong.ExplicitGroups([]kong.Group{
			{Key: "config", Title: "Configuration (every command; each flag also reads the environment variable shown):"},
			{Key: "gcp", Title: "gcp backend and notifications (PIPELINE_BACKEND=gcp; see pipeline doctor):"},
		}),
	)
}

// runParsed completes the parsed configuration with what the options give
// and runs the chosen command.
func runParsed(kctx *kong.Context, cfg *Config, o *options) error {
	cfg.stepSets = o.steps
	cfg.firestoreEmulator = os.Getenv("FIRESTORE_EMULATOR_HOST")
	cfg.wrap = o.wrap
	cfg.clock = o.clock
	env := &appEnv{stdout: o.stdout, stderr: o.stderr}
	return kctx.Run(cfg, env)
}

// appEnv carries the process's streams to commands.
type appEnv struct {
	stdout, stderr io.Writer
}
