package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
)

const (
	testAudience = "https://svc.run.app"
	allowedEmail = "scheduler@proj.iam.gserviceaccount.com"
)

// testNow is the fixed clock of the table tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// mint signs claims with key as a compact JWS; alg "none" is built by hand
// since go-jose refuses to sign with it.
func mint(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	if alg == "none" {
		enc := base64.RawURLEncoding
		return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func goodClaims(issuer string) map[string]any {
	return map[string]any{
		"iss":            issuer,
		"aud":            testAudience,
		"sub":            "1234567890",
		"email":          allowedEmail,
		"email_verified": true,
		"iat":            testNow.Add(-time.Minute).Unix(),
		"exp":            testNow.Add(time.Hour).Unix(),
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func request(header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/pipeline/steps/a", nil)
	for _, h := range header {
		r.Header.Add("Authorization", h)
	}
	return r
}

// checkResult asserts an Authenticate outcome: success with the email, or an
// error wrapping want whose message contains msg.
func checkResult(t *testing.T, caller pipeline.Caller, err error, want error, wantEmail, msg string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if caller.Email != wantEmail {
			t.Fatalf("caller email = %q, want %q", caller.Email, wantEmail)
		}
		return
	}
	t.Logf("refused: %v", err)
	if err == nil {
		t.Fatalf("Authenticate accepted the request as %+v, want %v", caller, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %v", err, want)
	}
	if code, wantCode := pipeline.ErrorStatus(err), pipeline.ErrorStatus(want); code != wantCode {
		t.Fatalf("status %d, want %d", code, wantCode)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not say %q", err, msg)
	}
	if caller != (pipeline.Caller{}) {
		t.Fatalf("caller %+v returned with an error", caller)
	}
}

type keys struct {
	rsa, otherRSA *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
}

func newKeys(t testing.TB) keys {
	t.Helper()
	r1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keys{rsa: r1, otherRSA: r2, ec: ec}
}

// newIssuerServer serves discovery and JWKS for the RSA and EC keys with
// go-oidc's own test server.
func newIssuerServer(t testing.TB, k keys) *httptest.Server {
	t.Helper()
	op := &oidctest.Server{
		PublicKeys: []oidctest.PublicKey{
			{PublicKey: k.rsa.Public(), KeyID: "rsa1", Algorithm: oidc.RS256},
			{PublicKey: k.ec.Public(), KeyID: "ec1", Algorithm: oidc.ES256},
		},
		Algorithms: []string{oidc.RS256, oidc.ES256},
	}
	srv := httptest.NewServer(op)
	t.Cleanup(srv.Close)
	op.SetIssuer(srv.URL)
	return srv
}

func pubPEM(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifierDiscovery(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	srv := newIssuerServer(t, k)
	v, err := auth.NewVerifier(ctx, auth.Config{
		Audience: testAudience,
		Issuer:   srv.URL,
		Allowed:  []string{allowedEmail},
		Now:      clock,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	good := goodClaims(srv.URL)
	rs := func(c map[string]any) string { return mint(t, k.rsa, jose.RS256, "rsa1", c) }
	bearer := func(c map[string]any) []string { return []string{"Bearer " + rs(c)} }
	goodToken := rs(good)
	parts := strings.Split(goodToken, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, with(good, "email", "intruder@proj.iam.gserviceaccount.com"))) + "." + parts[2]

	U, F := pipeline.ErrUnauthorized, pipeline.ErrForbidden
	tests := []struct {
		name   string
		header []string
		want   error
		msg    string // for errors: the check the message must name
	}{
		{name: "good RS256", header: bearer(good)},
		{name: "good ES256", header: []string{"Bearer " + mint(t, k.ec, jose.ES256, "ec1", good)}},
		{name: "lower-case scheme", header: []string{"bearer " + goodToken}},
		{name: "aud list holding ours", header: bearer(with(good, "aud", []string{"other", testAudience}))},
		{name: "email_verified as string", header: bearer(with(good, "email_verified", "true"))},
		{name: "email differs in case", header: bearer(with(good, "email", strings.ToUpper(allowedEmail)))},
		{name: "nbf within skew", header: bearer(with(good, "nbf", testNow.Add(30*time.Second).Unix()))},
		{name: "iat within skew", header: bearer(with(good, "iat", testNow.Add(30*time.Second).Unix()))},

		{name: "missing header", want: U, msg: "Authorization header: missing"},
		{name: "two headers", header: []string{"Bearer " + goodToken, "Bearer " + goodToken}, want: U, msg: "Authorization header: sent 2 times"},
		{name: "basic scheme", header: []string{"Basic dXNlcjpwYXNz"}, want: U, msg: `scheme "Basic" is not Bearer`},
		{name: "no scheme", header: []string{goodToken}, want: U, msg: `want "Bearer <OIDC ID token>"`},
		{name: "empty bearer", header: []string{"Bearer    "}, want: U, msg: `want "Bearer <OIDC ID token>"`},
		{name: "garbage", header: []string{"Bearer not-a-jwt"}, want: U, msg: "token: malformed"},
		{name: "garbage in three parts", header: []string{"Bearer a.b.c"}, want: U, msg: "token: malformed header"},
		{name: "oversized", header: []string{"Bearer " + strings.Repeat("a", 20000)}, want: U, msg: "longer than the 16384 allowed"},
		{name: "wrong audience", header: bearer(with(good, "aud", "https://other.run.app")), want: U,
			msg: `audience: expected "https://svc.run.app", got ["https://other.run.app"]`},
		{name: "audience with trailing slash", header: bearer(with(good, "aud", testAudience+"/")), want: U,
			msg: `audience: expected "https://svc.run.app", got ["https://svc.run.app/"]`},
		{name: "audience missing", header: bearer(with(good, "aud", nil)), want: U, msg: `audience: expected "https://svc.run.app", got []`},
		{name: "wrong issuer", header: bearer(with(good, "iss", "https://accounts.google.com")), want: U,
			msg: `issuer: expected "` + srv.URL + `", got "https://accounts.google.com"`},
		{name: "expired", header: bearer(with(good, "exp", testNow.Add(-time.Second).Unix())), want: U, msg: "token expired at 2026-03-01T11:59:59Z"},
		{name: "expires now", header: bearer(with(good, "exp", testNow.Unix())), want: U, msg: "token expired at 2026-03-01T12:00:00Z"},
		{name: "exp missing", header: bearer(with(good, "exp", nil)), want: U, msg: "exp: claim missing"},
		{name: "nbf in the future", header: bearer(with(good, "nbf", testNow.Add(2*time.Minute).Unix())), want: U, msg: "token not valid before 2026-03-01T12:02:00Z"},
		{name: "iat in the future", header: bearer(with(good, "iat", testNow.Add(2*time.Minute).Unix())), want: U, msg: "token issued in the future at 2026-03-01T12:02:00Z"},
		{name: "iat missing", header: bearer(with(good, "iat", nil)), want: U, msg: "iat: claim missing"},
		{name: "email missing", header: bearer(with(good, "email", nil)), want: U, msg: "email: claim missing"},
		{name: "email_verified false", header: bearer(with(good, "email_verified", false)), want: U, msg: "email_verified is false"},
		{name: "email_verified string false", header: bearer(with(good, "email_verified", "false")), want: U, msg: `email_verified is "false"`},
		{name: "email_verified missing", header: bearer(with(good, "email_verified", nil)), want: U, msg: "email_verified is missing"},
		{name: "email not allowed", header: bearer(with(good, "email", "intruder@proj.iam.gserviceaccount.com")), want: F,
			msg: `caller "intruder@proj.iam.gserviceaccount.com" is not in ALLOWED_INVOKERS`},
		{name: "unknown key, known kid", header: []string{"Bearer " + mint(t, k.otherRSA, jose.RS256, "rsa1", good)}, want: U, msg: "signature: no key of the issuer verifies"},
		{name: "unknown key and kid", header: []string{"Bearer " + mint(t, k.otherRSA, jose.RS256, "rsa9", good)}, want: U, msg: `JWKS (` + srv.URL},
		{name: "unknown kid named", header: []string{"Bearer " + mint(t, k.otherRSA, jose.RS256, "rsa9", good)}, want: U, msg: `has no key with kid "rsa9" (its kids: "rsa1", "ec1")`},
		{name: "unknown key, no kid", header: []string{"Bearer " + mint(t, k.otherRSA, jose.RS256, "", good)}, want: U, msg: "signature: no key of the issuer verifies"},
		{name: "tampered payload", header: []string{"Bearer " + tampered}, want: U, msg: "signature: no key of the issuer verifies"},
		{name: "alg none", header: []string{"Bearer " + mint(t, nil, "none", "", good)}, want: U, msg: `signature: algorithm "none" is refused`},
		{name: "HS256 keyed with the public key", header: []string{"Bearer " + mint(t, pubPEM(t, k.rsa.Public()), jose.HS256, "rsa1", good)}, want: U,
			msg: `signature: algorithm "HS256" is refused`},
		{name: "RS512 refused", header: []string{"Bearer " + mint(t, k.rsa, jose.RS512, "rsa1", good)}, want: U, msg: `signature: algorithm "RS512" is refused`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller, err := v.Authenticate(request(tt.header...))
			checkResult(t, caller, err, tt.want, good["email"].(string), tt.msg)
			if tt.want == nil && tt.name == "good RS256" && caller.Subject != "1234567890" {
				t.Fatalf("subject = %q", caller.Subject)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifierAllowlists(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	srv := newIssuerServer(t, k)
	const operator = "alice@example.com"
	cfg := auth.Config{Audience: testAudience, Issuer: srv.URL, Now: clock}

	empty, err := auth.NewVerifier(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Allowed = []string{allowedEmail}
	invokers, err := auth.NewVerifier(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	operators, err := invokers.WithAllowed("ALLOWED_OPERATORS", []string{operator})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := invokers.WithAllowed("ALLOWED_OPERATORS", []string{"not-an-email"}); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("WithAllowed(bad email) = %v, want ErrInvalid", err)
	}
	token := func(email string) string {
		return "Bearer " + mint(t, k.rsa, jose.RS256, "rsa1", with(goodClaims(srv.URL), "email", email))
	}
	tests := []struct {
		name  string
		v     *auth.Verifier
		email string
		want  error
		msg   string
	}{
		{"empty list refuses everyone", empty, allowedEmail, pipeline.ErrForbidden,
			`caller "` + allowedEmail + `" is not in ALLOWED_INVOKERS (the list is empty: nobody is allowed)`},
		{"invoker allowed", invokers, allowedEmail, nil, ""},
		{"operator is not an invoker", invokers, operator, pipeline.ErrForbidden, `caller "alice@example.com" is not in ALLOWED_INVOKERS`},
		{"operator allowed", operators, operator, nil, ""},
		{"invoker is not an operator", operators, allowedEmail, pipeline.ErrForbidden, `is not in ALLOWED_OPERATORS`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller, err := tt.v.Authenticate(request(token(tt.email)))
			checkResult(t, caller, err, tt.want, tt.email, tt.msg)
		})
	}
	if !operators.Allowed("Alice@Example.com") || operators.Allowed(allowedEmail) {
		t.Fatal("Allowed does not follow the operators list")
	}
}

// TestVerifierGoogle covers the Issuer "" path, with the key set overridden
// so no request leaves the machine.
func TestVerifierGoogle(t *testing.T) {
	k := newKeys(t)
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		Audience: testAudience,
		Allowed:  []string{allowedEmail},
		KeySet:   &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{k.rsa.Public()}},
		Now:      clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		iss  string
		want error
		msg  string
	}{
		{iss: "https://accounts.google.com"},
		{iss: "accounts.google.com"},
		{iss: "https://accounts.google.com/", want: pipeline.ErrUnauthorized,
			msg: `issuer: expected one of ["https://accounts.google.com", "accounts.google.com"], got "https://accounts.google.com/"`},
		{iss: "http://accounts.google.com", want: pipeline.ErrUnauthorized, msg: `got "http://accounts.google.com"`},
		{iss: "", want: pipeline.ErrUnauthorized, msg: `issuer: expected one of`},
	}
	for _, tt := range tests {
		t.Run(tt.iss, func(t *testing.T) {
			tok := mint(t, k.rsa, jose.RS256, "g1", with(goodClaims(tt.iss), "iss", tt.iss))
			caller, err := v.Authenticate(request("Bearer " + tok))
			checkResult(t, caller, err, tt.want, allowedEmail, tt.msg)
		})
	}
}

func TestNewVerifierConfig(t *testing.T) {
	ctx := context.Background()
	_, err := auth.NewVerifier(ctx, auth.Config{
		Issuer:  "http://issuer.example.com",
		Allowed: []string{"ok@example.com", "not-an-email", "a@b@c"},
	})
	if !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("NewVerifier(bad config) = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"audience is required", "http is only allowed on a loopback host", `"not-an-email", "a@b@c"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config error %q does not list %q", err, want)
		}
	}

	// Discovery that fails, or that names another issuer, fails start-up.
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	if _, err := auth.NewVerifier(ctx, auth.Config{Audience: testAudience, Issuer: notFound.URL}); err == nil || !strings.Contains(err.Error(), "discovery") {
		t.Fatalf("NewVerifier(issuer without discovery) = %v, want a discovery error", err)
	}
	op := &oidctest.Server{}
	liar := httptest.NewServer(op)
	defer liar.Close()
	op.SetIssuer("https://elsewhere.example.com")
	if _, err := auth.NewVerifier(ctx, auth.Config{Audience: testAudience, Issuer: liar.URL}); err == nil || !strings.Contains(err.Error(), "did not match") {
		t.Fatalf("NewVerifier(issuer mismatch) = %v, want a mismatch error", err)
	}
}

func TestOff(t *testing.T) {
	var a pipeline.Authenticator = auth.Off{}
	caller, err := a.Authenticate(request())
	checkResult(t, caller, err, nil, "anonymous", "")
}
