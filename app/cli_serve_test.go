package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// serveNode is the serve command of a parser of grammar.
func serveNode(t *testing.T, grammar any) *kong.Node {
	t.Helper()
	exit := -1
	p, err := newParser(context.Background(), grammar, io.Discard, io.Discard, &exit)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range p.Model.Children {
		if n.Name == "serve" {
			return n
		}
	}
	t.Fatal("no serve command")
	return nil
}

// flagLines describes every flag serve accepts (its own and the global
// ones): name, short, environment, default, group, help, negatable.
func flagLines(n *kong.Node) []string {
	var out []string
	for _, group := range n.AllFlags(false) {
		for _, f := range group {
			g := ""
			if f.Group != nil {
				g = f.Group.Key
			}
			out = append(out, fmt.Sprintf("--%s -%c env=%v default=%q group=%s negatable=%v hidden=%v help=%q",
				f.Name, f.Short, f.Envs, f.Default, g, f.Tag.Negatable, f.Hidden, f.Help))
		}
	}
	slices.Sort(out)
	return out
}

// The serve-only command line accepts exactly the flags the whole CLI's serve
// does, with the same environment variables, defaults and help: the fast
// path cannot drift from the CLI.
func TestServeCLIMatchesTheCLI(t *testing.T) {
	var full cli
	var fast serveCLI
	want, got := flagLines(serveNode(t, &full)), flagLines(serveNode(t, &fast))
	if len(want) < 10 {
		t.Fatalf("only %d flags found for serve: %v", len(want), want)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("serve-only flags differ from the CLI's serve:\n got %q\nwant %q", got, want)
	}
	if a, b := serveNode(t, &full).Help, serveNode(t, &fast).Help; a != b {
		t.Fatalf("serve help differs: %q vs %q", b, a)
	}
}

// Both parsers give serve the same configuration for the same arguments and
// environment.
func TestServeFastPathParsesLikeTheCLI(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
	}{
		{args: []string{"serve"}},
		{args: []string{"serve", "--port", "9123", "--dev", "--no-cron", "--reconcile-every", "1m"}},
		{args: []string{"serve", "-f", "a.yaml,b", "--data", "/tmp/x", "--log-level", "debug", "--host", "0.0.0.0"}},
		{args: []string{"serve"}, env: map[string]string{"PORT": "7001", "PIPELINE_DATA": "/tmp/y", "PIPELINE_AUTH": "off", "LOG_LEVEL": "warn", "PIPELINE_CRON": "false"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var full cli
			var fast serveCLI
			for _, g := range []any{&full, &fast} {
				exit := -1
				p, err := newParser(context.Background(), g, io.Discard, io.Discard, &exit)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Parse(tc.args); err != nil || exit >= 0 {
					t.Fatalf("parse %v: %v (exit %d)", tc.args, err, exit)
				}
			}
			if !reflect.DeepEqual(full.Serving.Config, fast.Config) || full.Serving.Serve != fast.Serve {
				t.Fatalf("configurations differ:\n CLI  %+v %+v\n fast %+v %+v", full.Serving.Config, full.Serving.Serve, fast.Config, fast.Serve)
			}
		})
	}
}

// Help, --version and usage errors of serve are the whole CLI's, printed
// once: the fast path parses quietly and hands over what it cannot run.
func TestServeHelpAndErrorsComeFromTheCLI(t *testing.T) {
	out, _, err := runArgs(t, "serve", "--help")
	if code := exitCodeOf(err); code != 0 || !strings.Contains(out, "Usage: pipeline serve") || !strings.Contains(out, "Configuration (every command") {
		t.Fatalf("serve --help: exit %d, output:\n%s", code, out)
	}
	out, stderr, err := runArgs(t, "serve", "--no-such-flag")
	if code := exitCodeOf(err); code != 2 || strings.Count(out+stderr, "unknown flag --no-such-flag") != 1 {
		t.Fatalf("serve --no-such-flag: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	out, _, err = runArgs(t, "serve", "--version")
	if code := exitCodeOf(err); code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("serve --version: exit %d, output %q", code, out)
	}
}

// exitCodeOf is the exit code runCLI's error asks for (0 for nil).
func exitCodeOf(err error) int {
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return ec.code
	}
	return 1
}
