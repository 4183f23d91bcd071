package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
)

const (
	iapAudience = "/projects/123456/global/backendServices/7890"
	iapEmail    = "alice@example.com"
)

// iapKeys is a stand-in for https://www.gstatic.com/iap/verify/public_key-jwk:
// a JWKS of ES256 keys, counting its fetches.
type iapKeys struct {
	*httptest.Server
	key     *ecdsa.PrivateKey
	fetches atomic.Int32
}

func newIAPKeys(t testing.TB) *iapKeys {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &iapKeys{key: key}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "iap-1", Algorithm: "ES256", Use: "sig"}}}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(k.Close)
	return k
}

// iapClaims are the claims IAP puts in its assertion (no email_verified).
func iapClaims() map[string]any {
	return map[string]any{
		"iss":   auth.IAPIssuer,
		"aud":   iapAudience,
		"sub":   "accounts.google.com:1234567890",
		"email": iapEmail,
		"hd":    "example.com",
		"iat":   testNow.Add(-time.Minute).Unix(),
		"exp":   testNow.Add(9 * time.Minute).Unix(),
	}
}

func iapRequest(assertion ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/ui/", nil)
	for _, a := range assertion {
		r.Header.Add(auth.IAPHeader, a)
	}
	return r
}

func TestIAPVerifier(t *testing.T) {
	keys := newIAPKeys(t)
	v, err := auth.NewIAPVerifier(context.Background(), auth.IAPConfig{Audience: iapAudience, KeysURL: keys.URL,
		Allowed: []string{iapEmail}, AllowListName: "ALLOWED_VIEWERS", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := newKeys(t)
	good := iapClaims()
	cases := []struct {
		name    string
		req     *http.Request
		want    error
		message string
	}{
		{"valid", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", good)), nil, ""},
		{"email in another case", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "email", "Alice@Example.com"))), nil, ""},
		{"wrong audience", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "aud", "/projects/123456/global/backendServices/1"))), pipeline.ErrUnauthorized, `audience: expected "` + iapAudience + `"`},
		{"a Cloud Run URL as audience", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "aud", testAudience))), pipeline.ErrUnauthorized, "audience"},
		{"wrong issuer", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "iss", "https://accounts.google.com"))), pipeline.ErrUnauthorized, `issuer: expected "https://cloud.google.com/iap"`},
		{"expired", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "exp", testNow.Add(-time.Second).Unix()))), pipeline.ErrUnauthorized, "token expired"},
		{"no exp", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "exp", nil))), pipeline.ErrUnauthorized, "exp: claim missing"},
		{"no email", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "email", nil))), pipeline.ErrUnauthorized, "email: claim missing"},
		{"alg none", iapRequest(mint(t, nil, "none", "", good)), pipeline.ErrUnauthorized, `algorithm "none" is refused`},
		{"RS256 (IAP signs ES256 only)", iapRequest(mint(t, k.rsa, jose.RS256, "iap-1", good)), pipeline.ErrUnauthorized, `algorithm "RS256" is refused (accepted: ES256)`},
		{"wrong key, right kid", iapRequest(mint(t, other, jose.ES256, "iap-1", good)), pipeline.ErrUnauthorized, "signature"},
		{"wrong key, unknown kid", iapRequest(mint(t, other, jose.ES256, "other", good)), pipeline.ErrUnauthorized, "signature"},
		{"missing header", iapRequest(), pipeline.ErrUnauthorized, "X-Goog-IAP-JWT-Assertion header: missing"},
		{"a bearer token instead", request("Bearer " + mint(t, keys.key, jose.ES256, "iap-1", good)), pipeline.ErrUnauthorized, "X-Goog-IAP-JWT-Assertion header: missing"},
		{"header twice", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", good), mint(t, keys.key, jose.ES256, "iap-1", good)), pipeline.ErrUnauthorized, "sent 2 times"},
		{"garbage", iapRequest("not-a-jwt"), pipeline.ErrUnauthorized, "malformed"},
		{"valid, not listed", iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "email", "mallory@example.com"))), pipeline.ErrForbidden, `"mallory@example.com" is not in ALLOWED_VIEWERS`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			caller, err := v.Authenticate(c.req)
			checkResult(t, caller, err, c.want, iapEmail, c.message)
		})
	}
	if keys.fetches.Load() == 0 {
		t.Error("the key set stand-in was never asked: the verifier did not use the configured keys URL")
	}

	// WithAllowed keeps the IAP header and keys: the operators' list.
	ops, err := v.WithAllowed("ALLOWED_OPERATORS", []string{"bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	caller, err := ops.Authenticate(iapRequest(mint(t, keys.key, jose.ES256, "iap-1", with(good, "email", "bob@example.com"))))
	checkResult(t, caller, err, nil, "bob@example.com", "")
	caller, err = ops.Authenticate(iapRequest(mint(t, keys.key, jose.ES256, "iap-1", good)))
	checkResult(t, caller, err, pipeline.ErrForbidden, "", "not in ALLOWED_OPERATORS")
	caller, err = ops.Authenticate(iapRequest())
	checkResult(t, caller, err, pipeline.ErrUnauthorized, "", "missing")
}

func TestNewIAPVerifierConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  auth.IAPConfig
		msg  string
	}{
		{"no audience", auth.IAPConfig{}, "IAP audience is required"},
		{"the service URL as audience", auth.IAPConfig{Audience: "https://svc.run.app"}, "want /projects/NUMBER/global/backendServices/ID"},
		{"spaces", auth.IAPConfig{Audience: " " + iapAudience}, "surrounding spaces"},
		{"plain http keys", auth.IAPConfig{Audience: iapAudience, KeysURL: "http://keys.example.com/jwk"}, "http is only allowed on a loopback host"},
		{"bad email", auth.IAPConfig{Audience: iapAudience, Allowed: []string{"alice"}}, `"alice"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.NewIAPVerifier(context.Background(), c.cfg)
			if !errors.Is(err, pipeline.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("NewIAPVerifier = %v, want ErrInvalid saying %q", err, c.msg)
			}
		})
	}
}
