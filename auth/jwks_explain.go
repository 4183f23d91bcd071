package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// jwksExplainer says why no key of a discovered issuer verified a token when
// the JWKS itself is the cause: no key with the token's kid, or that key
// labelled with an alg other than the token's (a popular Cloud Tasks
// emulator publishes its RSA key as "RSA256", which go-oidc skips). It reads
// the JWKS as plain JSON, at most once a minute, only after a failure.
type jwksExplainer struct {
	uri    string
	client *http.Client

	mu      sync.Mutex
	fetched time.Time
	keys    []jwksEntry
	err     error
}

// jwksEntry is what the explanation reads of one key.
type jwksEntry struct {
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Kty string `json:"kty"`
}

// jwksRefetch bounds how often a failing token makes the JWKS be read.
const jwksRefetch = time.Minute

// explain returns a sentence naming the JWKS problem for a token with alg and
// kid, or "" when the JWKS looks fine for it (the signature itself is wrong).
func (e *jwksExplainer) explain(ctx context.Context, alg, kid string, now time.Time) string {
	if e == nil {
		return ""
	}
	keys, err := e.load(ctx, now)
	if err != nil {
		return ""
	}
	var kids []string
	for _, k := range keys {
		if kid != "" && k.Kid != kid {
			kids = append(kids, fmt.Sprintf("%q", k.Kid))
			continue
		}
		if k.Alg == "" || k.Alg == alg {
			return "" // a usable key: the signature is what fails
		}
		if kid == "" {
			continue
		}
		usable := "not a JWS algorithm this service accepts"
		if slices.Contains(signingAlgs(), k.Alg) {
			usable = fmt.Sprintf("not the token's %q", alg)
		}
		return fmt.Sprintf("the issuer's JWKS (%s) labels key kid %q with alg %q, %s (accepted: %s), so no key is usable for this token; the issuer must publish the key with \"alg\": %q",
			e.uri, kid, k.Alg, usable, strings.Join(signingAlgs(), ", "), alg)
	}
	if kid == "" {
		return fmt.Sprintf("the issuer's JWKS (%s) has no key with alg %q and the token names no kid", e.uri, alg)
	}
	return fmt.Sprintf("the issuer's JWKS (%s) has no key with kid %q (its kids: %s)", e.uri, kid, strings.Join(kids, ", "))
}

func (e *jwksExplainer) load(ctx context.Context, now time.Time) ([]jwksEntry, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.fetched.IsZero() && now.Sub(e.fetched) < jwksRefetch && now.After(e.fetched) {
		return e.keys, e.err
	}
	e.fetched = now
	e.keys, e.err = e.fetch(ctx)
	return e.keys, e.err
}

func (e *jwksExplainer) fetch(ctx context.Context) ([]jwksEntry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.uri, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: %s", resp.Status)
	}
	var set struct {
		Keys []jwksEntry `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, err
	}
	return set.Keys, nil
}
