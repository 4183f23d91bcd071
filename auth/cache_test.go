package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TestTokenCache checks that a cached token skips only the signature: the
// allowlist and expiry still apply, and entries are re-verified after
// cacheTTL.
func TestTokenCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l, err := NewLocalIssuer("http://127.0.0.1:8080", "q@pipeline.local")
	if err != nil {
		t.Fatal(err)
	}
	l.now = func() time.Time { return now }
	v, err := NewVerifier(ctx, Config{
		Audience: "https://svc.run.app",
		Issuer:   l.Issuer(),
		Allowed:  []string{l.Email()},
		KeySet:   l.KeySet(),
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l.Token(ctx, "https://svc.run.app")
	if err != nil {
		t.Fatal(err)
	}
	auth := func(v *Verifier) error {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, err := v.Authenticate(r)
		return err
	}
	if err := auth(v); err != nil {
		t.Fatal(err)
	}
	// From here on no key verifies anything: only the cache can accept.
	v.sig = oidc.NewVerifier(v.issuer, &oidc.StaticKeySet{}, &oidc.Config{SupportedSigningAlgs: signingAlgs(), SkipClientIDCheck: true, SkipIssuerCheck: true, SkipExpiryCheck: true})
	if err := auth(v); err != nil {
		t.Fatalf("cached token refused: %v", err)
	}
	ops, err := v.WithAllowed("ALLOWED_OPERATORS", []string{"op@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth(ops); !errors.Is(err, pipeline.ErrForbidden) {
		t.Fatalf("cached token on another allowlist = %v, want ErrForbidden", err)
	}
	now = now.Add(cacheTTL)
	if err := auth(v); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("token after cacheTTL = %v, want a fresh signature check", err)
	}

	// A short-lived token leaves the cache at its exp.
	c := claims{Claims: jwt.Claims{Expiry: jwt.NewNumericDate(now.Add(time.Minute))}}
	tc := newTokenCache()
	tc.put("t", c, now)
	if _, ok := tc.get("t", now.Add(59*time.Second)); !ok {
		t.Fatal("entry missing before exp")
	}
	if _, ok := tc.get("t", now.Add(time.Minute)); ok {
		t.Fatal("entry served at its exp")
	}
	for i := range cacheEntries + 10 {
		tc.put(strconv.Itoa(i), c, now)
	}
	if len(tc.m) > cacheEntries {
		t.Fatalf("cache holds %d entries, bound is %d", len(tc.m), cacheEntries)
	}
}

// BenchmarkVerifyUncached measures a first sight of a token: signature,
// claims and the go-oidc backstop.
func BenchmarkVerifyUncached(b *testing.B) {
	ctx := context.Background()
	l, err := NewLocalIssuer("http://127.0.0.1:8080", "q@pipeline.local")
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(ctx, Config{Audience: "https://svc.run.app", Issuer: l.Issuer(), Allowed: []string{l.Email()}, KeySet: l.KeySet()})
	if err != nil {
		b.Fatal(err)
	}
	v.cache = nil
	tok, err := l.Token(ctx, "https://svc.run.app")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.verifyToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
