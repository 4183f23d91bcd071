package chaos

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// tokenKinds are the bad tokens scenario 8b forges.
var tokenKinds = []string{"forged", "expired", "wrong-audience", "wrong-issuer", "alg-none", "hs256-public-key", "unverified-email", "not-allowed"}

// Scenario 8b: bad tokens on the gcp backend (real OIDC discovery against
// the Cloud Tasks emulator's issuer, whose signing key the suite holds):
// forged, expired, wrong-audience, wrong-issuer, alg-none,
// HS256-with-the-public-key, unverified-email and not-allowed tokens, each
// on a route that would act if it were accepted. Every one must get 401 or
// 403 and the ledger must not change.
func TestForgedTokens(t *testing.T) {
	sz := chaosSize(t)
	s := newStack(t, "gcp", chainYAML("1ms"), stackOptions{})
	if !s.startRun("seed") {
		t.Fatal("seed run not started")
	}
	if v := waitRuns([]string{"chaos@seed"}, time.Minute, s.getRun); v["chaos@seed"].Status != "succeeded" {
		t.Fatalf("seed run: %+v", v["chaos@seed"])
	}
	before := ledgerDigest(t, s)
	m := newMinter(t, s)
	f := figures{scenario: "forged-tokens", backend: "gcp"}
	accepted := 0
	byKind := map[string]int{}
	began := time.Now()
	for i := range sz.forgedTokens {
		kind := tokenKinds[i%len(tokenKinds)]
		tok := m.mint(kind)
		var method, path, body string
		switch i / len(tokenKinds) % 4 {
		case 0:
			method, path, body = "POST", "/pipeline/start", fmt.Sprintf(`{"pipeline":"chaos","key":"tok-%d"}`, i)
		case 1:
			method, path, body = "POST", "/pipeline/runs/chaos@seed/steps/a/enqueue", `{"force":true}`
		case 2:
			method, path = "GET", "/pipeline/runs"
		default:
			method, path, body = "POST", "/pipeline/steps/a", `{"run_id":"chaos@seed","step":"a","generation":1}`
		}
		req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		f.tried++
		if resp.StatusCode != 401 && resp.StatusCode != 403 {
			accepted++
			byKind[kind]++
			t.Errorf("%s token on %s %s: %d %s", kind, method, path, resp.StatusCode, clip(string(data)))
			continue
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			t.Errorf("%s token: %d without a JSON error: %q", kind, resp.StatusCode, clip(string(data)))
		}
		f.completed++
	}
	f.recovery = time.Since(began)
	changed := 0
	if ledgerDigest(t, s) != before {
		changed = 1
		t.Errorf("the ledger changed under refused tokens")
	}
	f.add("kinds %d", len(tokenKinds))
	f.add("accepted %d", accepted)
	f.add("ledger changed %d", changed)
	report(t, f)
	// The minter itself must be right: a token it signs the honest way passes.
	req, _ := http.NewRequest("GET", s.base+"/pipeline/runs", nil)
	req.Header.Set("Authorization", "Bearer "+m.mint("valid"))
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a valid token minted by the suite got %d: the forged ones prove nothing", resp.StatusCode)
	}
}

// minter signs tokens like the emulator's issuer, and bends them.
type minter struct {
	t        *testing.T
	key      *rsa.PrivateKey
	other    *rsa.PrivateKey
	kid      string
	issuer   string
	audience string
}

func newMinter(t *testing.T, s *stack) *minter {
	t.Helper()
	resp, err := http.Get(s.emu.IssuerURL() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("issuer JWKS: %v (%d keys)", err, len(set.Keys))
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &minter{t: t, key: s.key, other: other, kid: set.Keys[0].KeyID, issuer: s.emu.IssuerURL(), audience: s.base}
}

func (m *minter) mint(kind string) string {
	m.t.Helper()
	now := time.Now()
	claims := map[string]any{"iss": m.issuer, "aud": m.audience, "sub": tasksSA, "email": tasksSA, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	key := m.key
	switch kind {
	case "forged":
		key = m.other
	case "expired":
		claims["iat"], claims["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	case "wrong-audience":
		claims["aud"] = "https://someone-else.example"
	case "wrong-issuer":
		claims["iss"] = "https://accounts.evil.example"
	case "unverified-email":
		claims["email_verified"] = false
	case "not-allowed":
		claims["email"], claims["sub"] = "intruder@example.com", "intruder@example.com"
	case "alg-none":
		return m.unsigned("none", claims, nil)
	case "hs256-public-key":
		der, err := x509.MarshalPKIXPublicKey(&m.key.PublicKey)
		if err != nil {
			m.t.Fatal(err)
		}
		return m.unsigned("HS256", claims, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), m.kid))
	if err != nil {
		m.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		m.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// unsigned builds a token by hand: alg none (no signature) or HS256 keyed
// with hmacKey.
func (m *minter) unsigned(alg string, claims map[string]any, hmacKey []byte) string {
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": m.kid})
	payload, _ := json.Marshal(claims)
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	if hmacKey == nil {
		return signing + "."
	}
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
