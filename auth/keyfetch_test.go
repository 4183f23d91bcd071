package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
)

// rotatingIssuer is an OIDC issuer stand-in whose JWKS can change (a key
// rotation) and which counts the fetches of its JWKS.
type rotatingIssuer struct {
	srv     *httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	keys    jose.JSONWebKeySet
}

func newRotatingIssuer(t *testing.T, keys ...jose.JSONWebKey) *rotatingIssuer {
	t.Helper()
	ri := &rotatingIssuer{keys: jose.JSONWebKeySet{Keys: keys}}
	mux := http.NewServeMux()
	ri.srv = httptest.NewServer(mux)
	t.Cleanup(ri.srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"id_token_signing_alg_values_supported":["RS256"]}`, ri.srv.URL, ri.srv.URL+"/jwks")
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		ri.fetches.Add(1)
		ri.mu.Lock()
		defer ri.mu.Unlock()
		_ = json.NewEncoder(w).Encode(ri.keys)
	})
	return ri
}

func (ri *rotatingIssuer) add(k jose.JSONWebKey) {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	ri.keys.Keys = append(ri.keys.Keys, k)
}

// A flood of forged tokens naming unknown key IDs makes the issuer's keys be
// fetched at most once per interval, all callers together; a token signed by
// a key the issuer rotated in is accepted once the interval is over.
func TestForgedTokenFloodDoesNotRefetchKeys(t *testing.T) {
	k := newKeys(t)
	ri := newRotatingIssuer(t, jose.JSONWebKey{Key: k.rsa.Public(), KeyID: "rsa1", Algorithm: "RS256", Use: "sig"})
	var mu sync.Mutex
	now := testNow
	clk := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{Audience: testAudience, Issuer: ri.srv.URL, Allowed: []string{allowedEmail}, Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	good := mint(t, k.rsa, jose.RS256, "rsa1", goodClaims(ri.srv.URL))
	caller, err := v.Authenticate(request("Bearer " + good))
	checkResult(t, caller, err, nil, allowedEmail, "")

	// 400 forged tokens, each with its own random kid, from 8 callers.
	forged := make(chan string, 400)
	for i := range 400 {
		forged <- mint(t, k.otherRSA, jose.RS256, fmt.Sprintf("forged-%d-%d", i, time.Now().UnixNano()), goodClaims(ri.srv.URL))
	}
	close(forged)
	var accepted atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range forged {
				if _, err := v.Authenticate(request("Bearer " + tok)); err == nil {
					accepted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d forged tokens accepted", n)
	}
	if n := ri.fetches.Load(); n > 2 {
		t.Fatalf("400 forged tokens made %d JWKS fetches, want at most 2", n)
	}
	// The real key still verifies during the flood.
	caller, err = v.Authenticate(request("Bearer " + mint(t, k.rsa, jose.RS256, "rsa1", with(goodClaims(ri.srv.URL), "sub", "again"))))
	checkResult(t, caller, err, nil, allowedEmail, "")

	// The issuer rotates a new key in; once the interval is over, a token
	// it signed is accepted.
	ri.add(jose.JSONWebKey{Key: k.otherRSA.Public(), KeyID: "rsa2", Algorithm: "RS256", Use: "sig"})
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	before := ri.fetches.Load()
	caller, err = v.Authenticate(request("Bearer " + mint(t, k.otherRSA, jose.RS256, "rsa2", goodClaims(ri.srv.URL))))
	checkResult(t, caller, err, nil, allowedEmail, "")
	if n := ri.fetches.Load() - before; n != 1 {
		t.Fatalf("the rotated key took %d fetches, want 1", n)
	}
	// An unknown kid right after is refused without another fetch.
	_, err = v.Authenticate(request("Bearer " + mint(t, k.ec, jose.ES256, "forged-after", goodClaims(ri.srv.URL))))
	if err == nil || !errors.Is(err, pipeline.ErrUnauthorized) {
		t.Fatalf("forged token after the rotation: %v", err)
	}
	if n := ri.fetches.Load() - before; n != 1 {
		t.Fatalf("a forged token after the rotation fetched the keys again (%d fetches)", n)
	}
}
