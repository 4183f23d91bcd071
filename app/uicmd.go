package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/ui"
)

// uiCmd runs a proxy on loopback that adds the user's identity token to each
// request to a deployed (or local) service, so that a browser can open its
// dashboard: the same idea as `gcloud run services proxy`.
type uiCmd struct {
	URL     string `name:"url" env:"PIPELINE_URL" required:"" help:"The service's URL (https://SERVICE, or http://127.0.0.1:PORT of a local serve)."`
	IDToken string `name:"id-token" env:"PIPELINE_ID_TOKEN" help:"Send this identity token instead of minting one from your Google credentials."`
	Listen  string `name:"listen" default:"127.0.0.1:0" help:"Loopback address of the proxy (port 0: any free port)."`

	// tokens mints identity tokens; nil means idtoken.NewTokenSource.
	tokens tokenSourceFunc
	// ready is told the proxy's dashboard URL (tests).
	ready func(string)
}

func (c *uiCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	target, err := url.Parse(c.URL)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return fmt.Errorf("--url %q is not an http(s) URL of the service", c.URL)
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil || !isLoopback(host) {
		return fmt.Errorf("--listen %q must be a loopback address such as 127.0.0.1:8081: whoever reaches the proxy acts with your identity", c.Listen)
	}
	token, who, err := c.tokenFunc(ctx, cfg, target)
	if err != nil {
		return err
	}
	proxy, err := ui.NewProxy(ui.ProxyConfig{Target: target, Token: token, Logger: newLogger(cfg, env.stderr)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.Listen, err)
	}
	addr := "http://" + ln.Addr().String() + ui.Prefix
	fmt.Fprintf(env.stdout, "dashboard of %s: open %s (as %s; Ctrl-C stops the proxy)\n", target.Redacted(), addr, who)
	if c.ready != nil {
		c.ready(addr)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	tl := newTrackingListener(ln) // browsers pre-connect sockets they may never use
	go func() { errc <- srv.Serve(tl) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = shutdownServer(shutdown, srv, tl)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// tokenFunc is how the proxy gets its tokens: --id-token as given; the local
// issuer's key for a local serve on this machine; else the user's Google
// credentials (renewed as they expire). who says whose identity it is.
func (c *uiCmd) tokenFunc(ctx context.Context, cfg *Config, target *url.URL) (func(context.Context) (string, error), string, error) {
	audience := cfg.Audience
	if audience == "" {
		audience = c.URL
	}
	if c.IDToken != "" {
		return func(context.Context) (string, error) { return c.IDToken, nil }, "the --id-token given", nil
	}
	if isLoopback(target.Hostname()) && cfg.Backend == "local" && c.tokens == nil {
		if iss, err := auth.LoadLocalIssuer(localKeyPath(cfg), localIssuer, localCaller); err == nil {
			return func(ctx context.Context) (string, error) { return iss.Token(ctx, localAudience) }, localCaller + " (the local issuer's key)", nil
		}
		// No key: a local serve with PIPELINE_AUTH=off needs no token.
		return nil, "nobody (no local issuer key in " + cfg.Data + "; fine with PIPELINE_AUTH=off)", nil
	}
	mint := c.tokens
	if mint == nil {
		mint = func(ctx context.Context, aud string) (oauth2.TokenSource, error) {
			return idtoken.NewTokenSource(ctx, aud)
		}
	}
	ts, err := mint(ctx, audience)
	if err != nil {
		return nil, "", fmt.Errorf("could not mint an identity token for audience %s from your Google credentials: %w (run `gcloud auth application-default login`, use a service account's credentials, or pass --id-token)", audience, err)
	}
	return func(context.Context) (string, error) {
		tok, err := ts.Token()
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}, "your Google identity (audience " + audience + ")", nil
}
