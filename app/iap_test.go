package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/ui"
)

const iapTestAudience = "/projects/42/global/backendServices/7"

// iapStandIn serves an ES256 key set as IAP's does and signs assertions
// with its key.
type iapStandIn struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func newIAPStandIn(t *testing.T) *iapStandIn {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := &iapStandIn{key: key}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// assertion signs an IAP assertion for email with key (the stand-in's if
// nil), changed by the given claims.
func (s *iapStandIn) assertion(t *testing.T, key *ecdsa.PrivateKey, email string, change map[string]any) string {
	t.Helper()
	if key == nil {
		key = s.key
	}
	now := time.Now()
	claims := map[string]any{"iss": auth.IAPIssuer, "aud": iapTestAudience, "email": email, "sub": "accounts.google.com:1",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(9 * time.Minute).Unix()}
	for k, v := range change {
		claims[k] = v
	}
	payload, _ := json.Marshal(claims)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
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

// TestDashboardBehindIAP: with IAP_AUDIENCE set, `serve` (auth on) takes the
// dashboard's caller from IAP's signed header: a viewer reads, an operator
// acts, and a missing, forged or misaddressed assertion is a 401 JSON error
// that changes nothing; the API routes keep their bearer tokens.
func TestDashboardBehindIAP(t *testing.T) {
	iap := newIAPStandIn(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(file, []byte("name: web\ntime_zone: UTC\nschedule: \"0 6 * * *\"\nsteps:\n  - {name: a, kind: http, http: {url: \"http://127.0.0.1:9/a\"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{File: []string{file}, Backend: "local", Data: filepath.Join(dir, "data"), Auth: "on", LogLevel: "error",
		LeaseGrace: durationOf(30 * time.Second), AllowedViewers: []string{viewerEmail}, AllowedOperators: []string{"ops@example.com"},
		IAPAudience: iapTestAudience, IAPKeysURL: iap.URL}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := buildApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := a.listen("127.0.0.1:0")
	if err != nil {
		a.close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.serve(ctx, ln, nil) }()
	t.Cleanup(func() { stop(); <-done; a.close() })
	base := a.baseURL

	do := func(method, path string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"reason":"iap test"}`))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	as := func(assertion string) map[string]string { return map[string]string{auth.IAPHeader: assertion} }

	if code, body := do("GET", "/ui/", as(iap.assertion(t, nil, viewerEmail, nil))); code != 200 || !strings.Contains(body, viewerEmail+" · viewer") || strings.Contains(body, "/ui/api/pipelines/web/pause") {
		t.Fatalf("viewer through IAP: %d\n%s", code, body)
	}
	if code, body := do("GET", "/ui/", as(iap.assertion(t, nil, "OPS@example.com", nil))); code != 200 || !strings.Contains(body, "ops@example.com · operator") {
		t.Fatalf("operator through IAP: %d\n%s", code, body)
	}

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	localTok, err := a.token(context.Background(), localAudience)
	if err != nil {
		t.Fatal(err)
	}
	for name, hdr := range map[string]map[string]string{
		"no assertion":           nil,
		"a bearer token instead": {"Authorization": "Bearer " + localTok},
		"wrong audience":         as(iap.assertion(t, nil, viewerEmail, map[string]any{"aud": "/projects/42/global/backendServices/8"})),
		"wrong issuer":           as(iap.assertion(t, nil, viewerEmail, map[string]any{"iss": "https://accounts.google.com"})),
		"expired":                as(iap.assertion(t, nil, viewerEmail, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})),
		"another key":            as(iap.assertion(t, other, viewerEmail, nil)),
	} {
		code, body := do("GET", "/ui/", hdr)
		var msg struct {
			Error string `json:"error"`
		}
		if code != 401 || json.Unmarshal([]byte(body), &msg) != nil || msg.Error == "" {
			t.Errorf("%s: %d %s; want 401 with a JSON error", name, code, body)
		}
	}
	if code, body := do("GET", "/ui/", nil); !strings.Contains(body, "X-Goog-IAP-JWT-Assertion header: missing") || !strings.Contains(body, "Identity-Aware Proxy address") {
		t.Errorf("no assertion: %d %s; want the missing header named and the way in", code, body)
	}
	if code, body := do("GET", "/ui/", map[string]string{"Accept": "text/html"}); code != 401 || !strings.Contains(body, "<h1>401 Unauthorized</h1>") || !strings.Contains(body, "Identity-Aware Proxy address") {
		t.Errorf("a browser without an assertion: %d %s; want the error page", code, body)
	}
	if code, body := do("GET", "/ui/", as(iap.assertion(t, nil, "mallory@example.com", nil))); code != 403 || !strings.Contains(body, "ALLOWED_VIEWERS") {
		t.Errorf("an unlisted IAP user: %d %s; want 403 naming the list", code, body)
	}

	// Acting: refused for the viewer and without an assertion; done for the operator.
	act := func(hdr map[string]string) map[string]string {
		out := map[string]string{"Origin": base, ui.CSRFHeader: "1", "Content-Type": "application/json"}
		for k, v := range hdr {
			out[k] = v
		}
		return out
	}
	if code, body := do("POST", "/ui/api/pipelines/web/pause", act(nil)); code != 401 {
		t.Errorf("pause without an assertion: %d %s", code, body)
	}
	if code, body := do("POST", "/ui/api/pipelines/web/pause", act(as(iap.assertion(t, nil, viewerEmail, nil)))); code != 403 {
		t.Errorf("pause by a viewer: %d %s", code, body)
	}
	if st, err := a.orch.PauseState(context.Background(), "web"); err != nil || st.Paused {
		t.Fatalf("refused requests paused the pipeline: %+v %v", st, err)
	}
	if code, body := do("POST", "/ui/api/pipelines/web/pause", act(as(iap.assertion(t, nil, "ops@example.com", nil)))); code != 200 {
		t.Fatalf("pause by an operator: %d %s", code, body)
	}
	if st, err := a.orch.PauseState(context.Background(), "web"); err != nil || !st.Paused {
		t.Fatalf("the operator's pause did not land: %+v %v", st, err)
	}

	// The API keeps its bearer tokens (the queue and the CLI call it).
	if code, body := do("GET", "/pipeline/runs?pipeline=web", map[string]string{"Authorization": "Bearer " + localTok}); code != 200 {
		t.Errorf("API with the local bearer token: %d %s", code, body)
	}
	if code, _ := do("GET", "/pipeline/runs?pipeline=web", as(iap.assertion(t, nil, "ops@example.com", nil))); code != 401 {
		t.Errorf("API with only an IAP assertion: %d; want 401 (the API verifies bearer tokens)", code)
	}
}

// TestIAPConfigErrors: IAP_AUDIENCE with auth off, or not an IAP audience,
// is refused at start-up with a message naming it.
func TestIAPConfigErrors(t *testing.T) {
	cfg := &Config{File: []string{"x.yaml"}, Backend: "local", Data: t.TempDir(), Auth: "off", LogLevel: "info",
		LeaseGrace: durationOf(30 * time.Second), IAPAudience: iapTestAudience}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "IAP_AUDIENCE") {
		t.Errorf("IAP_AUDIENCE with auth off: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(file, []byte("name: web\nsteps:\n  - {name: a, kind: http, http: {url: \"http://127.0.0.1:9/a\"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = &Config{File: []string{file}, Backend: "local", Data: filepath.Join(dir, "data"), Auth: "on", LogLevel: "error",
		LeaseGrace: durationOf(30 * time.Second), IAPAudience: "https://pipeline-dev-1.europe-west1.run.app"}
	a, err := buildApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		a.close()
		t.Fatal("a service URL as IAP_AUDIENCE was accepted")
	}
	if msg := fmt.Sprint(err); !strings.Contains(msg, "IAP_AUDIENCE") || !strings.Contains(msg, "/projects/NUMBER/global/backendServices/ID") {
		t.Errorf("error %q; want it to name IAP_AUDIENCE and the expected shape", msg)
	}
}
