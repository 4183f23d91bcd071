// Package app is the pipeline command and service, wired from configuration:
// every subcommand (serve, run, enqueue, status, ...), every configuration
// flag and environment variable, and every HTTP route.
//
// The stock binary (cmd/pipeline) is a thin main over this package. A
// program of your own registers its step kinds and gets the same command
// line and service:
//
//	func main() {
//		os.Exit(app.Run(os.Args[1:], app.WithSteps(func(reg *steps.Registry) {
//			reg.Register("greet", newGreet)
//		})))
//	}
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// Exit codes of the command line.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitFailed: the operation failed or found problems.
	ExitFailed = 1
	// ExitUsage: a usage or configuration error; nothing was done.
	ExitUsage = 2
)

// Run runs the command line with args (without the program name) until it
// ends or the process is interrupted (SIGINT, SIGTERM), prints any error to
// standard error and returns the process's exit code.
func Run(args []string, opts ...Option) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := newOptions(opts)
	err := Main(ctx, args, opts...)
	if err == nil {
		return ExitOK
	}
	if msg := errorMessage(err); msg != "" {
		fmt.Fprintln(o.stderr, "pipeline:", msg)
	}
	return ExitCode(err)
}

// Main runs the command line with args (without the program name). The
// error, if any, carries the exit code (see ExitCode); Main prints usage and
// the output of commands, not the returned error.
func Main(ctx context.Context, args []string, opts ...Option) error {
	return runCLI(ctx, args, newOptions(opts))
}

// ExitCode is the process exit code for an error returned by Main: 0 for
// nil, the command's own code where it set one, else 1.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return ec.code
	}
	return ExitFailed
}

// errorMessage is what Run prints for err ("" when the command printed it).
func errorMessage(err error) string {
	var ec exitCode
	if errors.As(err, &ec) {
		return ec.msg
	}
	return err.Error()
}

// exitCode ends the process with a code, after printing msg (if any).
type exitCode struct {
	code int
	msg  string
}

func (e exitCode) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

// options are what Option values set.
type options struct {
	steps          []func(*steps.Registry, *Config)
	wrap           Wrappers
	clock          func() time.Time
	stdout, stderr io.Writer
}

func newOptions(opts []Option) *options {
	o := &options{stdout: os.Stdout, stderr: os.Stderr}
	for _, opt := range opts {
		opt(o)
	}
	return o
}
