package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/pipelinehq/pipeline/auth"
)

// Token lifetime and reuse: a token is minted per audience and email and
// reused until it has less than tokenMinLeft to live, as Google's token
// sources do.
const (
	tokenLifetime = time.Hour
	tokenMinLeft  = 5 * time.Minute
)

// issuer is a minimal OpenID Connect issuer: discovery, JWKS, and RS256 ID
// tokens for service accounts.
type issuer struct {
	url    string
	jwks   []byte
	disco  []byte
	http   http.Handler // discovery and JWKS
	signer jose.Signer

	mu    sync.Mutex
	cache map[tokenKey]token
}

type tokenKey struct{ aud, email string }

type token struct {
	raw string
	exp time.Time
}

// idClaims are the claims Google puts in a service account's ID token.
type idClaims struct {
	jwt.Claims
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
}

func newIssuer(url string, key *rsa.PrivateKey) (*issuer, error) {
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("emulator: issuer: generate key: %w", err)
		}
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("emulator: issuer: key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("emulator: issuer: encode JWKS: %w", err)
	}
	disco, err := json.Marshal(map[string]any{
		"issuer":                                url,
		"jwks_uri":                              url + "/jwks",
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.RS256)},
		"claims_supported":                      []string{"aud", "email", "email_verified", "exp", "iat", "iss", "sub"},
	})
	if err != nil {
		return nil, fmt.Errorf("emulator: issuer: encode discovery: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), pub.KeyID),
	)
	if err != nil {
		return nil, fmt.Errorf("emulator: issuer: signer: %w", err)
	}
	return &issuer{url: url, jwks: jwks, disco: disco, signer: signer, cache: map[tokenKey]token{},
		http: auth.ServeDiscovery("/.well-known/openid-configuration", disco, "/jwks", jwks)}, nil
}

// ServeHTTP serves /.well-known/openid-configuration and /jwks.
func (i *issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i.http.ServeHTTP(w, r)
}

// token returns an ID token for email with audience aud, valid for at least
// tokenMinLeft after now.
func (i *issuer) token(aud, email string, now time.Time) (string, error) {
	k := tokenKey{aud, email}
	i.mu.Lock()
	defer i.mu.Unlock()
	if t, ok := i.cache[k]; ok && t.exp.Sub(now) >= tokenMinLeft {
		return t.raw, nil
	}
	exp := now.Add(tokenLifetime)
	sub := email
	if sub == "" {
		sub = "cloud-tasks-emulator"
	}
	raw, err := jwt.Signed(i.signer).Claims(idClaims{
		Claims: jwt.Claims{
			Issuer:   i.url,
			Subject:  sub,
			Audience: jwt.Audience{aud},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(exp),
		},
		Email:         email,
		EmailVerified: email != "",
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("emulator: sign token for %s: %w", email, err)
	}
	i.cache[k] = token{raw: raw, exp: exp}
	return raw, nil
}
