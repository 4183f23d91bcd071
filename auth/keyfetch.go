package auth

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// keyRefetchInterval bounds how often an issuer's keys (and discovery
// document) are fetched: at most once per interval per URL, every caller
// together.
const keyRefetchInterval = 30 * time.Second

// maxKeysBody bounds a remembered answer.
const maxKeysBody = 1 << 20

// pacedFetch is the transport of the key set's fetches. go-oidc's remote
// key set (oidc.KeySet has no hook for this) fetches the issuer's keys again
// on every token naming a key ID it does not hold, so a flood of forged
// tokens would be a flood on the issuer's certs endpoint. pacedFetch answers
// a GET of a URL fetched less than keyRefetchInterval ago with that fetch's
// answer (or its failure), without the network: an unknown kid then costs a
// parse of the remembered key set, and a key the issuer rotated in is picked
// up by the first token after the interval. Fetches of one URL never run in
// parallel.
type pacedFetch struct {
	base  http.RoundTripper
	now   func() time.Time
	every time.Duration

	mu   sync.Mutex // held across a fetch: callers wait for it, then share it
	last map[string]fetched
}

// fetched is one answer, replayed until it is older than the interval.
type fetched struct {
	at     time.Time
	status int
	header http.Header
	body   []byte
	err    error
}

func newPacedFetch(base http.RoundTripper, now func() time.Time, every time.Duration) *pacedFetch {
	if base == nil {
		base = http.DefaultTransport
	}
	return &pacedFetch{base: base, now: now, every: every, last: map[string]fetched{}}
}

// pacedClient returns a copy of c whose GETs are paced.
func pacedClient(c *http.Client, now func() time.Time, every time.Duration) *http.Client {
	pc := *c
	pc.Transport = newPacedFetch(c.Transport, now, every)
	return &pc
}

// RoundTrip implements http.RoundTripper.
func (p *pacedFetch) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return p.base.RoundTrip(req)
	}
	url := req.URL.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if f, ok := p.last[url]; ok && now.Sub(f.at) < p.every && !now.Before(f.at) {
		return f.replay(req)
	}
	f := fetched{at: now}
	resp, err := p.base.RoundTrip(req)
	if err != nil {
		f.err = err
	} else {
		f.status, f.header = resp.StatusCode, resp.Header.Clone()
		f.body, f.err = io.ReadAll(io.LimitReader(resp.Body, maxKeysBody))
		resp.Body.Close()
	}
	p.last[url] = f
	return f.replay(req)
}

func (f fetched) replay(req *http.Request) (*http.Response, error) {
	if f.err != nil {
		return nil, fmt.Errorf("fetched %s less than %s ago: %w", req.URL, keyRefetchInterval, f.err)
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", f.status, http.StatusText(f.status)), StatusCode: f.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: f.header.Clone(), Body: io.NopCloser(bytes.NewReader(f.body)),
		ContentLength: int64(len(f.body)), Request: req,
	}, nil
}
