package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// asyncHTTPStep is the `http` kind with `async: true`: the request starts
// remote work and the step waits for it without holding a request.
//
//   - Start sends the configured request. 202 Accepted with a Location
//     header (or a JSON body with "status_url") means started: the step
//     waits. Any other 2xx means done at once (its body is the output);
//     other statuses are mapped as by the http kind.
//   - Each check GETs the status URL with the same headers and ID token:
//     200 (or another 2xx but 202) is done with its JSON body as the
//     output; 202 is still running (a new Location moves the status URL);
//     408, 429 and 5xx are transient (Retry-After sets the next check);
//     other 4xx fail the step.
//
// The remote API takes no client-chosen ID, so Start is at most once per
// attempt except in the window between the remote accepting the request
// and the orchestrator recording the status URL (a crash there starts the
// same attempt again once its lease expires, which sends the request
// again): services that can should deduplicate on the
// X-Pipeline-Attempt-Key header sent with the start (AttemptKey, then
// the ledger's NamespaceTag when known: RUN/STEP/gG/aN/LEDGER).
// The kind cannot cancel the remote work (no standard way to).
//
// The status URL must be on the origin (scheme, host and port) of the
// request that starts the work: each check sends the step's headers and ID
// token to it, so a status URL elsewhere is refused (permanent) rather than
// handed those credentials; for the same reason a redirect to another
// origin is not followed (its 3xx fails the step).
type asyncHTTPStep struct {
	*httpStep
	interval time.Duration // 0: the orchestrator's default
}

var _ AsyncStep = (*asyncHTTPStep)(nil)

// asyncHTTPState is what a waiting async http step keeps.
type asyncHTTPState struct {
	URL string `json:"url"`
}

// Run is not used for an asynchronous step; it refuses, saying so.
func (h *asyncHTTPStep) Run(context.Context, Input) (json.RawMessage, error) {
	return nil, Permanent(errors.New("http: an async step must be run by an orchestrator that supports asynchronous steps"))
}

// Start sends the request that starts the work.
func (h *asyncHTTPStep) Start(ctx context.Context, in Input) (Poll, error) {
	data := templateData{
		RunID: in.RunID, Pipeline: in.Pipeline, Step: in.Step,
		Date: in.DateString(), Attempt: in.Attempt, Params: in.Params,
	}
	if data.Params == nil {
		data.Params = map[string]string{}
	}
	req, err := h.request(ctx, data)
	if err != nil {
		return Poll{}, err
	}
	key := AttemptKey(in)
	if tag := in.NamespaceTag(); tag != "" {
		key += "/" + tag // another deployment's start of the same attempt is not a duplicate
	}
	req.Header.Set("X-Pipeline-Attempt-Key", key)
	x, err := h.exchange(ctx, req)
	if err != nil {
		return Poll{}, err
	}
	switch {
	case x.code == http.StatusAccepted:
		return h.pending(x, "")
	case x.code >= 200 && x.code <= 299:
		out, err := x.output()
		return Poll{Done: true, Output: out}, err
	default:
		return Poll{}, x.failure()
	}
}

// Check GETs the status URL.
func (h *asyncHTTPStep) Check(ctx context.Context, in Input, state json.RawMessage) (Poll, error) {
	var st asyncHTTPState
	if err := json.Unmarshal(state, &st); err != nil || st.URL == "" {
		return Poll{}, Permanent(fmt.Errorf("http: async state %s has no status url", state))
	}
	u, err := checkURL(st.URL)
	if err != nil {
		return Poll{}, Permanent(fmt.Errorf("http: status url %q: %w", st.URL, err))
	}
	data := templateData{RunID: in.RunID, Pipeline: in.Pipeline, Step: in.Step, Date: in.DateString(), Attempt: in.Attempt, Params: in.Params}
	if data.Params == nil {
		data.Params = map[string]string{}
	}
	var start strings.Builder
	if err := h.url.Execute(&start, data); err != nil {
		return Poll{}, Permanent(fmt.Errorf("http: expanding %s: %w", h.url.Name(), err))
	}
	if su, err := url.Parse(start.String()); err != nil || !sameOrigin(su, u) {
		return Poll{}, Permanent(fmt.Errorf("http: status url %s is on another origin than the request that started the work (%s): "+
			"not sending the step's headers and ID token there", redact(u), origin(su)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Poll{}, Permanent(fmt.Errorf("http: building status request: %w", err))
	}
	for name, t := range h.headers {
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return Poll{}, Permanent(fmt.Errorf("http: expanding %s: %w", t.Name(), err))
		}
		req.Header.Set(name, b.String())
	}
	req.Header.Set("User-Agent", "pipeline-http-step")
	x, err := h.exchange(ctx, req)
	if err != nil {
		return Poll{}, err
	}
	switch {
	case x.code == http.StatusAccepted:
		return h.pending(x, st.URL)
	case x.code >= 200 && x.code <= 299:
		out, err := x.output()
		return Poll{Done: true, Output: out}, err
	default:
		return Poll{}, x.failure()
	}
}

// pending is the Poll of a 202: the status URL from the Location header or
// the body's "status_url" (relative to the request), else the current one.
func (h *asyncHTTPStep) pending(x reply, current string) (Poll, error) {
	loc := x.header.Get("Location")
	if loc == "" {
		var body struct {
			StatusURL string `json:"status_url"`
		}
		if json.Unmarshal(x.raw, &body) == nil {
			loc = body.StatusURL
		}
	}
	status := current
	if loc != "" {
		ref, err := url.Parse(loc)
		if err != nil {
			return Poll{}, Permanent(fmt.Errorf("http: %s: 202 with a bad status url %q: %w", x.where, loc, err))
		}
		status = x.url.ResolveReference(ref).String()
	}
	if status == "" {
		return Poll{}, Permanent(fmt.Errorf("http: %s: 202 Accepted without a Location header or a status_url in the body: nothing to check", x.where))
	}
	su, err := checkURL(status)
	if err != nil {
		return Poll{}, Permanent(fmt.Errorf("http: status url %q: %w", status, err))
	}
	if !sameOrigin(x.url, su) {
		return Poll{}, Permanent(fmt.Errorf("http: %s: 202 with a status url on another origin, %s (the request went to %s): "+
			"the checks would send the step's headers and ID token there; serve the status from the same scheme, host and port",
			x.where, origin(su), origin(x.url)))
	}
	st, _ := json.Marshal(asyncHTTPState{URL: status})
	after := h.interval
	if d, ok := retryAfter(x.header.Get("Retry-After"), time.Now()); ok {
		after = d
	}
	u, _ := url.Parse(status)
	return Poll{State: st, After: after, Link: redact(u)}, nil
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (a port left out is the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	if a == nil || b == nil {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && originPort(a) == originPort(b)
}

// origin renders u's scheme, host and port.
func origin(u *url.URL) string {
	if u == nil {
		return "(none)"
	}
	return u.Scheme + "://" + u.Host
}

func originPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// sameOriginRedirects follows a redirect within the first request's
// origin only (at most 10, as net/http does); to another origin the
// redirect is the answer, which fails the step naming its status.
func sameOriginRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if !sameOrigin(via[0].URL, req.URL) {
		return http.ErrUseLastResponse
	}
	return nil
}
