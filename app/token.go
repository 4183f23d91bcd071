package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pipelinehq/pipeline/auth"
)

// tokenCmd prints an ID token from the local issuer, whose key a local
// `pipeline serve` with auth on keeps in its data directory, so that curl can
// call that service.
type tokenCmd struct {
	Email string `name:"email" default:"local-invoker@pipeline.local" help:"Caller email in the token; the local service allows only the default."`
}

func (c *tokenCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if cfg.Backend != "local" {
		return exitCode{code: ExitUsage, msg: "token mints from the local issuer of the local backend; for the gcp backend use `gcloud auth print-identity-token` or `pipeline tasks-emulator --token-for EMAIL`"}
	}
	audience := cfg.Audience // the global --audience (OIDC_AUDIENCE)
	if audience == "" {
		audience = localAudience
	}
	path := localKeyPath(cfg)
	iss, err := auth.LoadLocalIssuer(path, localIssuer, c.Email)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no local issuer key at %s: start `pipeline serve` (auth on) once to create it, or pass the --data directory of the running serve", path)
	}
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tok, err := iss.Token(ctx, audience)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(env.stdout, tok)
	fmt.Fprintf(env.stderr, "token for %s, audience %s, valid 1 h: curl -H \"Authorization: Bearer $TOKEN\" ...\n", c.Email, audience)
	return nil
}
