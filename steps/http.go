package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"
)

// MaxHTTPOutput is the largest response body of an http step kept as its
// output; a larger body yields {"status": code, "truncated": true}.
const MaxHTTPOutput = 64 << 10

// errSnippet bounds the part of an error response quoted in the step's error.
const errSnippet = 512

var httpMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// httpStep is the `http` kind: one HTTP request per attempt.
type httpStep struct {
	method   string
	url      *template.Template
	headers  map[string]*template.Template
	body     *template.Template // nil: no body
	timeout  time.Duration      // 0: only the step's own deadline
	audience string             // "": no ID token
	client   *http.Client

	mu     sync.Mutex
	tokens oauth2.TokenSource // created on first use when audience is set
}

var _ Step = (*httpStep)(nil)

// templateData is what the url, header and body templates see.
type templateData struct {
	RunID    string
	Pipeline string
	Step     string
	Date     string // YYYY-MM-DD
	Attempt  int
	Params   map[string]string
}

// NewHTTP builds an `http` step from its settings:
//
//	url:      absolute http(s) URL (required)
//	method:   GET, POST (default), PUT, PATCH, DELETE, HEAD or OPTIONS
//	headers:  mapping of header name to value
//	body:     request body
//	timeout:  per-request limit such as "30s" (default: the step's timeout)
//	audience: when set, an ID token for this audience is sent as a bearer
//	          token (for private Cloud Run services), minted with the
//	          ambient Google credentials
//	async:    true makes the step asynchronous (see asyncHTTPStep): a 202
//	          answer starts work that is checked until done
//	check_interval: with async, the wait between checks (default 30s)
//
// url, header values and body are text/templates over .RunID .Pipeline .Step
// .Date (YYYY-MM-DD) .Attempt and .Params.NAME; a missing param fails the step
// permanently. Use {{urlquery .Params.x}} to escape a value inside the url. The
// url is checked at construction with sample values, unless it starts with a
// template, in which case it is checked once expanded.
//
// A 2xx answer succeeds: a JSON body up to MaxHTTPOutput becomes the output,
// any other body gives {"status": code}. 408, 429, 5xx, network errors and
// timeouts are transient; other statuses fail permanently.
func NewHTTP(settings map[string]any) (Step, error) {
	s := ReadSettings("http", settings)
	rawURL := s.String("url", true)
	method := s.String("method", false)
	headers := s.StringMap("headers")
	body := s.String("body", false)
	hasBody := s.Has("body")
	timeout := s.Duration("timeout", false)
	audience := s.String("audience", false)
	async := s.Bool("async")
	interval := s.Duration("check_interval", false)

	st := &httpStep{
		method:   http.MethodPost,
		timeout:  timeout,
		audience: audience,
		headers:  make(map[string]*template.Template, len(headers)),
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	if method != "" {
		m := strings.ToUpper(method)
		if !httpMethods[m] {
			s.Problemf("method %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", method)
		}
		st.method = m
	}
	parse := func(what, text string) *template.Template {
		t, err := template.New(what).Option("missingkey=error").Parse(text)
		if err != nil {
			s.Problemf("%s: bad template: %v", what, err)
			return nil
		}
		return t
	}
	if rawURL != "" {
		// A url that starts with a template (say {{.Params.endpoint}}) is
		// checked when it is expanded; any other is checked now.
		if st.url = parse("url", rawURL); st.url != nil && !strings.HasPrefix(rawURL, "{{") {
			if err := checkTemplatedURL(st.url); err != nil {
				s.Problemf("url %q: %v", rawURL, err)
			}
		}
	}
	for _, name := range sortedKeys(headers) {
		if !validHeaderName(name) {
			s.Problemf("headers: %q is not a valid header name", name)
			continue
		}
		st.headers[http.CanonicalHeaderKey(name)] = parse("headers."+name, headers[name])
	}
	if hasBody {
		st.body = parse("body", body)
	}
	if interval > 0 && !async {
		s.Problemf("check_interval applies only with async: true")
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if async {
		// The checks send the step's headers to the status URL; a redirect
		// to another origin would carry them there: not followed.
		st.client.CheckRedirect = sameOriginRedirects
		return &asyncHTTPStep{httpStep: st, interval: interval}, nil
	}
	return st, nil
}

// checkTemplatedURL expands t with sample values (params empty) and checks
// that the result is an absolute http or https URL.
func checkTemplatedURL(t *template.Template) error {
	var b strings.Builder
	sample := templateData{RunID: "p@2006-01-02", Pipeline: "p", Step: "s", Date: "2006-01-02", Attempt: 1}
	if err := template.Must(t.Clone()).Option("missingkey=zero").Execute(&b, sample); err != nil {
		return fmt.Errorf("bad template: %w", err)
	}
	_, err := checkURL(b.String())
	return err
}

func checkURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("must be an absolute http:// or https:// URL")
	}
	if u.Host == "" {
		return nil, errors.New("has no host")
	}
	return u, nil
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		// RFC 9110 token characters.
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// Run sends the request once and maps the answer to an output or an error.
func (h *httpStep) Run(ctx context.Context, in Input) (json.RawMessage, error) {
	data := templateData{
		RunID: in.RunID, Pipeline: in.Pipeline, Step: in.Step,
		Date: in.DateString(), Attempt: in.Attempt, Params: in.Params,
	}
	if data.Params == nil {
		data.Params = map[string]string{}
	}
	req, err := h.request(ctx, data)
	if err != nil {
		return nil, err
	}
	x, err := h.exchange(ctx, req)
	if err != nil {
		return nil, err
	}
	if x.code >= 200 && x.code <= 299 {
		return x.output()
	}
	return nil, x.failure()
}

// reply is an http step's answer, read.
type reply struct {
	where     string // method and redacted URL, for messages
	code      int
	header    http.Header
	raw       []byte
	truncated bool
	readErr   error
	url       *url.URL // the request's
}

// exchange sends req (with the step's ID token and per-request timeout) and
// reads the answer. A network error, timeout or cancellation is transient.
func (h *httpStep) exchange(ctx context.Context, req *http.Request) (reply, error) {
	where := req.Method + " " + redact(req.URL)
	if h.audience != "" {
		tok, err := h.idToken(ctx)
		if err != nil {
			return reply{}, fmt.Errorf("http: %s: ID token for audience %q: %w", where, h.audience, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
		req = req.WithContext(ctx)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// Network errors, timeouts and cancellation: transient.
		return reply{}, fmt.Errorf("http: %s: %w", where, unwrapURLError(err))
	}
	defer resp.Body.Close()
	// Read at most one byte past the limit: enough to know it was exceeded.
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxHTTPOutput+1))
	x := reply{where: where, code: resp.StatusCode, header: resp.Header, raw: raw, readErr: readErr, url: req.URL}
	if x.truncated = len(raw) > MaxHTTPOutput; x.truncated {
		x.raw = raw[:MaxHTTPOutput]
	}
	return x, nil
}

// output is a 2xx reply's output.
func (x reply) output() (json.RawMessage, error) {
	if x.readErr != nil {
		return nil, fmt.Errorf("http: %s: status %d: reading body: %w", x.where, x.code, x.readErr)
	}
	return successOutput(x.code, x.raw, x.truncated), nil
}

// failure is a non-2xx reply's error: 408, 429 and 5xx are transient
// (carrying the Retry-After the service asked for), others permanent.
func (x reply) failure() error {
	err := fmt.Errorf("http: %s: status %d%s", x.where, x.code, snippet(x.raw))
	switch {
	case x.code == http.StatusRequestTimeout, x.code == http.StatusTooManyRequests, x.code >= 500:
		if d, ok := retryAfter(x.header.Get("Retry-After"), time.Now()); ok {
			return RetryAfter(err, d)
		}
		return err
	default:
		return Permanent(err)
	}
}

// retryAfter parses a Retry-After value (seconds or an HTTP date).
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// request expands the templates into a request bound to ctx.
func (h *httpStep) request(ctx context.Context, data templateData) (*http.Request, error) {
	expand := func(t *template.Template) (string, error) {
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return "", Permanent(fmt.Errorf("http: expanding %s: %w", t.Name(), err))
		}
		return b.String(), nil
	}
	rawURL, err := expand(h.url)
	if err != nil {
		return nil, err
	}
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, Permanent(fmt.Errorf("http: url %q: %w", rawURL, err))
	}
	var body io.Reader
	var bodyBytes []byte
	if h.body != nil {
		s, err := expand(h.body)
		if err != nil {
			return nil, err
		}
		bodyBytes = []byte(s)
		body = bytes.NewReader(bodyBytes)
	}
	req, err := http.NewRequestWithContext(ctx, h.method, u.String(), body)
	if err != nil {
		return nil, Permanent(fmt.Errorf("http: building request: %w", err))
	}
	for name, t := range h.headers {
		v, err := expand(t)
		if err != nil {
			return nil, err
		}
		req.Header.Set(name, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "pipeline-http-step")
	}
	if len(bodyBytes) > 0 && req.Header.Get("Content-Type") == "" {
		if json.Valid(bodyBytes) {
			req.Header.Set("Content-Type", "application/json")
		} else {
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	return req, nil
}

// idToken returns an ID token for the step's audience, creating the token
// source on first use. A failed creation is retried on the next attempt.
func (h *httpStep) idToken(ctx context.Context) (string, error) {
	h.mu.Lock()
	if h.tokens == nil {
		// The source outlives this attempt: do not tie it to ctx's deadline.
		ts, err := idtoken.NewTokenSource(context.WithoutCancel(ctx), h.audience)
		if err != nil {
			h.mu.Unlock()
			return "", err
		}
		h.tokens = ts
	}
	ts := h.tokens
	h.mu.Unlock()
	tok, err := ts.Token() // oauth2.ReuseTokenSource inside: cached until expiry
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

func successOutput(code int, raw []byte, truncated bool) json.RawMessage {
	if truncated {
		return json.RawMessage(fmt.Sprintf(`{"status":%d,"truncated":true}`, code))
	}
	var b bytes.Buffer
	if len(bytes.TrimSpace(raw)) > 0 && json.Compact(&b, raw) == nil {
		return json.RawMessage(b.Bytes())
	}
	return json.RawMessage(fmt.Sprintf(`{"status":%d}`, code))
}

// snippet quotes the start of an error response body.
func snippet(raw []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(raw[:min(len(raw), errSnippet)]), "\uFFFD"))
	if s == "" {
		return ""
	}
	if len(raw) > errSnippet {
		s += "…"
	}
	return ": " + s
}

// redact drops the query and user info, which may hold secrets, from u for
// error messages.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// full URL (query included); the cause stays reachable with errors.Is.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
