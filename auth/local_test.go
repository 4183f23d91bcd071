package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
)

const localEmail = "local-queue@pipeline.local"

func TestLocalIssuerRoundTrip(t *testing.T) {
	ctx := context.Background()
	l, err := auth.NewLocalIssuer("http://127.0.0.1:8080", localEmail)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(ctx, auth.Config{
		Audience: testAudience,
		Issuer:   l.Issuer(),
		Allowed:  []string{l.Email()},
		KeySet:   l.KeySet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l.Token(ctx, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	caller, err := v.Authenticate(request("Bearer " + tok))
	checkResult(t, caller, err, nil, localEmail, "")
	if caller.Subject != localEmail {
		t.Fatalf("subject = %q, want the email", caller.Subject)
	}

	// Tokens are reused per audience, and bound to it.
	again, err := l.Token(ctx, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	if again != tok {
		t.Fatal("a fresh token was minted while the last one had an hour to live")
	}
	other, err := l.Token(ctx, "https://other.run.app")
	if err != nil {
		t.Fatal(err)
	}
	caller, err = v.Authenticate(request("Bearer " + other))
	checkResult(t, caller, err, pipeline.ErrUnauthorized, "", `audience: expected "https://svc.run.app", got ["https://other.run.app"]`)

	// Another issuer's key does not verify, even with the same issuer URL.
	stranger, err := auth.NewLocalIssuer(l.Issuer(), localEmail)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := stranger.Token(ctx, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	caller, err = v.Authenticate(request("Bearer " + forged))
	checkResult(t, caller, err, pipeline.ErrUnauthorized, "", "signature: no key of the issuer verifies")

	if _, err := l.Token(ctx, ""); err == nil {
		t.Fatal("Token accepted an empty audience")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Token(cancelled, testAudience); !errors.Is(err, context.Canceled) {
		t.Fatalf("Token(cancelled) = %v, want context.Canceled", err)
	}
}

// TestLocalIssuerDiscovery verifies local tokens through go-oidc discovery
// served by DiscoveryHandler, at the root and under a path.
func TestLocalIssuerDiscovery(t *testing.T) {
	for _, path := range []string{"", "/local-issuer"} {
		t.Run("path="+path, func(t *testing.T) {
			ctx := context.Background()
			srv := httptest.NewUnstartedServer(nil)
			l, err := auth.NewLocalIssuer("http://"+srv.Listener.Addr().String()+path, localEmail)
			if err != nil {
				t.Fatal(err)
			}
			srv.Config.Handler = l.DiscoveryHandler()
			srv.Start()
			defer srv.Close()

			v, err := auth.NewVerifier(ctx, auth.Config{Audience: testAudience, Issuer: l.Issuer(), Allowed: []string{localEmail}})
			if err != nil {
				t.Fatalf("NewVerifier by discovery: %v", err)
			}
			tok, err := l.Token(ctx, testAudience)
			if err != nil {
				t.Fatal(err)
			}
			caller, err := v.Authenticate(request("Bearer " + tok))
			checkResult(t, caller, err, nil, localEmail, "")

			for _, tc := range []struct {
				method, path string
				code         int
			}{
				{http.MethodGet, path + "/jwks", http.StatusOK},
				{http.MethodPost, path + "/jwks", http.StatusMethodNotAllowed},
				{http.MethodGet, path + "/elsewhere", http.StatusNotFound},
			} {
				req, err := http.NewRequestWithContext(ctx, tc.method, srv.URL+tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.code {
					t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
				}
			}
		})
	}
}

func TestNewLocalIssuerInput(t *testing.T) {
	for _, tc := range []struct{ issuer, email, msg string }{
		{"http://pipeline.example.com", localEmail, "loopback"},
		{"ftp://127.0.0.1", localEmail, "scheme"},
		{"http://127.0.0.1", "", "email is required"},
		{"http://127.0.0.1", "nobody", "not emails"},
	} {
		if _, err := auth.NewLocalIssuer(tc.issuer, tc.email); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("NewLocalIssuer(%q, %q) = %v, want an error saying %q", tc.issuer, tc.email, err, tc.msg)
		}
	}
}

func TestOpenLocalIssuerKeepsItsKeyInAFile(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/keys/local-issuer.pem"
	if _, err := auth.LoadLocalIssuer(path, "http://127.0.0.1:8080", localEmail); err == nil {
		t.Fatal("LoadLocalIssuer of a missing file succeeded")
	}
	service, err := auth.OpenLocalIssuer(path, "http://127.0.0.1:8080", localEmail)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", st, err)
	}
	// Another process (an operator command) loads the same key and mints a
	// token that the service's verifier accepts.
	cli, err := auth.LoadLocalIssuer(path, "http://127.0.0.1:8080", localEmail)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Audience: "aud", Issuer: "http://127.0.0.1:8080", Allowed: []string{localEmail}, KeySet: service.KeySet()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cli.Token(ctx, "aud")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, err := v.Authenticate(r); err != nil {
		t.Fatalf("token from the loaded key refused: %v", err)
	}
	again, err := auth.OpenLocalIssuer(path, "http://127.0.0.1:8080", localEmail)
	if err != nil || again.JWKS().Keys[0].KeyID != service.JWKS().Keys[0].KeyID {
		t.Fatalf("reopened issuer has another key: %v", err)
	}
}
