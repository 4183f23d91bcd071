package app

import (
	"context"
	"fmt"

	"github.com/pipelinehq/pipeline/queue/cloudtasks/emulator"
)

// tasksEmulatorCmd runs the in-process Cloud Tasks v2 emulator on its own,
// for running the gcp backend against emulators on one machine.
type tasksEmulatorCmd struct {
	Addr          string   `default:"127.0.0.1:8123" help:"gRPC listen address (CLOUD_TASKS_EMULATOR_HOST)."`
	IssuerAddr    string   `default:"127.0.0.1:8124" help:"OIDC issuer listen address (OIDC_ISSUER is http://ADDR)."`
	TokenFor      []string `help:"Print an ID token (valid 1 h) for each of these emails, e.g. the Scheduler account, to call the service with curl."`
	TokenAudience string   `help:"Audience of the printed tokens (the service URL, exactly)." default:"http://127.0.0.1:8080"`
}

func (c *tasksEmulatorCmd) Run(ctx context.Context, _ *Config, env *appEnv) error {
	emu, err := emulator.Start(ctx, emulator.Config{Addr: c.Addr, IssuerAddr: c.IssuerAddr, ReuseWindow: 0})
	if err != nil {
		return fmt.Errorf("tasks emulator: %w", err)
	}
	defer emu.Close()
	fmt.Fprintf(env.stdout, "export CLOUD_TASKS_EMULATOR_HOST=%s\nexport OIDC_ISSUER=%s\n", emu.Addr(), emu.IssuerURL())
	for _, email := range c.TokenFor {
		tok, err := emu.Token(c.TokenAudience, email)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "# token for %s (audience %s)\nexport TOKEN=%s\n", email, c.TokenAudience, tok)
	}
	fmt.Fprintln(env.stderr, "Cloud Tasks emulator running; tasks are dispatched over HTTP with OIDC tokens from the issuer above. Ctrl-C stops it.")
	<-ctx.Done()
	return nil
}
