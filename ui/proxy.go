package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// ProxyConfig configures the local proxy of `pipeline ui`.
type ProxyConfig struct {
	// Target is the service's base URL (https://SERVICE).
	Target *url.URL
	// Token returns the identity token to send (it should cache and renew
	// it); nil sends none (a local service with auth off).
	Token  func(ctx context.Context) (string, error)
	Logger *slog.Logger
}

// NewProxy returns a reverse proxy to cfg.Target that adds the user's
// identity token to each request, as `gcloud run services proxy` does. It
// must listen on loopback only: whoever reaches it acts as the user. So that
// a foreign page in the user's browser cannot borrow that authority, it
// refuses state-changing requests a browser marks as cross-site, and
// presents the browser's own-origin requests to the service as the
// service's origin.
func NewProxy(cfg ProxyConfig) (http.Handler, error) {
	if cfg.Target == nil || (cfg.Target.Scheme != "http" && cfg.Target.Scheme != "https") || cfg.Target.Host == "" {
		return nil, errors.New("ui proxy: the target must be an http(s) URL of the service")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	target := *cfg.Target
	origin := target.Scheme + "://" + target.Host
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&target)
			pr.Out.Host = target.Host
			pr.Out.Header.Del("Cookie")
			if pr.In.Header.Get("Origin") != "" {
				pr.Out.Header.Set("Origin", origin)
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cfg.Logger.Warn("ui proxy: service unreachable", "target", origin, "error", err.Error())
			writeJSONError(w, http.StatusBadGateway, fmt.Sprintf("the service at %s did not answer: %v", origin, err))
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) {
			if why := crossSite(r); why != "" {
				writeJSONError(w, http.StatusForbidden, "cross-site request refused by the local proxy: "+why)
				return
			}
		}
		r = r.Clone(r.Context())
		r.Header.Del("Authorization")
		if cfg.Token != nil {
			tok, err := cfg.Token(r.Context())
			if err != nil {
				writeJSONError(w, http.StatusBadGateway, fmt.Sprintf("could not mint an identity token for %s: %v", origin, err))
				return
			}
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		rp.ServeHTTP(w, r)
	}), nil
}
