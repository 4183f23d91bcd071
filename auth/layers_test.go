package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TestDefenceLayers shows that the checks behind the named ones hold on their
// own: go-oidc's signature pass refuses "none" and HS256 without peekHeader,
// and the go-oidc backstop refuses bad iss, aud and exp without checkClaims.
func TestDefenceLayers(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(ctx, Config{
		Audience: "https://svc.run.app",
		Issuer:   "https://issuer.example.com",
		Allowed:  []string{"a@example.com"},
		KeySet:   &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public()}},
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(kv ...any) []byte {
		c := map[string]any{
			"iss": "https://issuer.example.com", "aud": "https://svc.run.app", "sub": "1",
			"email": "a@example.com", "email_verified": true,
			"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sign := func(alg jose.SignatureAlgorithm, k any, payload []byte) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, nil)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	t.Run("signature pass refuses HS256 and none", func(t *testing.T) {
		hs := sign(jose.HS256, []byte("public key bytes as an HMAC secret"), claims())
		parts := strings.Split(sign(jose.RS256, key, claims()), ".")
		none := "eyJhbGciOiJub25lIn0." + parts[1] + "."
		for _, raw := range []string{hs, none} {
			if _, err := v.sig.Verify(ctx, raw); err == nil {
				t.Fatalf("go-oidc signature pass accepted %q", raw)
			}
		}
	})

	t.Run("backstop refuses what checkClaims would", func(t *testing.T) {
		for name, payload := range map[string][]byte{
			"issuer":   claims("iss", "https://evil.example.com"),
			"audience": claims("aud", "https://svc.run.app/"),
			"expired":  claims("exp", now.Add(-time.Second).Unix()),
		} {
			raw := sign(jose.RS256, key, payload)
			err := v.backstop(ctx, raw, payload)
			if !errors.Is(err, pipeline.ErrUnauthorized) {
				t.Errorf("%s: backstop = %v, want ErrUnauthorized", name, err)
			}
		}
		good := claims()
		raw := sign(jose.RS256, key, good)
		if err := v.backstop(ctx, raw, good); err != nil {
			t.Fatalf("backstop refused a good token: %v", err)
		}
		// Its key set vouches for exactly one token.
		vp := verifiedPayload{raw: raw, payload: good}
		if _, err := vp.VerifySignature(ctx, sign(jose.RS256, key, claims("sub", "2"))); err == nil {
			t.Fatal("verifiedPayload vouched for a token other than the verified one")
		}
	})
}
