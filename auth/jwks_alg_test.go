package auth_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/pipeline"
)

// A stand-in for a popular Cloud Tasks emulator's issuer: its JWKS labels
// its RSA key "alg": "RSA256" (not a JWS algorithm), so strict verifiers
// skip the key and every token fails. The 401 says exactly that.
func TestJWKSKeyWithUnusableAlgIsNamed(t *testing.T) {
	k := newKeys(t)
	pub := k.rsa.PublicKey
	enc := base64.RawURLEncoding
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"id_token_signing_alg_values_supported":["RS256"]}`, srv.URL, srv.URL+"/jwks")
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		other := k.otherRSA.PublicKey
		fmt.Fprintf(w, `{"keys":[{"kty":"RSA","use":"sig","alg":"RSA256","kid":"emu1","n":%q,"e":%q},{"kty":"RSA","use":"sig","alg":"RS256","kid":"ok1","n":%q,"e":%q}]}`,
			enc.EncodeToString(pub.N.Bytes()), enc.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			enc.EncodeToString(other.N.Bytes()), enc.EncodeToString(big.NewInt(int64(other.E)).Bytes()))
	})
	v, err := auth.NewVerifier(context.Background(), auth.Config{Audience: testAudience, Issuer: srv.URL, Allowed: []string{allowedEmail}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, k.rsa, jose.RS256, "emu1", goodClaims(srv.URL))
	caller, err := v.Authenticate(request("Bearer " + tok))
	checkResult(t, caller, err, pipeline.ErrUnauthorized, "", `kid "emu1"`)
	checkResult(t, caller, err, pipeline.ErrUnauthorized, "", `labels key kid "emu1" with alg "RSA256"`)
	// A key labelled correctly in the same JWKS verifies.
	caller, err = v.Authenticate(request("Bearer " + mint(t, k.otherRSA, jose.RS256, "ok1", goodClaims(srv.URL))))
	checkResult(t, caller, err, nil, allowedEmail, "")
	// A bad signature under the good key is still a signature failure.
	caller, err = v.Authenticate(request("Bearer " + mint(t, k.rsa, jose.RS256, "ok1", goodClaims(srv.URL))))
	checkResult(t, caller, err, pipeline.ErrUnauthorized, "", "no key of the issuer verifies the token")
}
