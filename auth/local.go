package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Local tokens live an hour and are reused until five minutes before expiry,
// so the local queue pays for an RSA signature once per audience and hour.
const (
	localTokenTTL   = time.Hour
	localTokenReuse = 5 * time.Minute
)

// LocalIssuer mints ES256 ID tokens with a key that lives only in memory: the
// local queue signs its deliveries with it and the service verifies them with
// the same Verifier as in GCP, given KeySet() (or discovery served by
// DiscoveryHandler). It is safe for concurrent use.
type LocalIssuer struct {
	issuer string
	email  string
	key    *ecdsa.PrivateKey
	kid    string
	signer jose.Signer
	now    func() time.Time

	mu     sync.Mutex
	tokens map[string]localToken // by audience
}

type localToken struct {
	raw string
	exp time.Time
}

// NewLocalIssuer makes a fresh RSA-2048 key for an issuer URL (https, or http
// on a loopback host) and the caller email its tokens carry.
func NewLocalIssuer(issuer, email string) (*LocalIssuer, error) {
	if err := checkIssuerURL(issuer); err != nil {
		return nil, fmt.Errorf("auth: local issuer: %w", err)
	}
	if email == "" {
		return nil, fmt.Errorf("auth: local issuer: email is required")
	}
	if err := checkEmails([]string{email}); err != nil {
		return nil, fmt.Errorf("auth: local issuer: %w", err)
	}
	// P-256: generating it takes microseconds, an RSA key tens of
	// milliseconds of every local start-up.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: local issuer: generate key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("auth: local issuer: key id: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid),
	)
	if err != nil {
		return nil, fmt.Errorf("auth: local issuer: signer: %w", err)
	}
	return &LocalIssuer{
		issuer: issuer,
		email:  email,
		key:    key,
		kid:    kid,
		signer: signer,
		now:    time.Now,
		tokens: make(map[string]localToken),
	}, nil
}

// Issuer returns the iss of the tokens.
func (l *LocalIssuer) Issuer() string { return l.issuer }

// Email returns the caller email the tokens carry.
func (l *LocalIssuer) Email() string { return l.email }

// KeySet returns the public key as a key set, for Config.KeySet.
func (l *LocalIssuer) KeySet() oidc.KeySet {
	return &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&l.key.PublicKey}}
}

// JWKS returns the public key as a JSON Web Key Set.
func (l *LocalIssuer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &l.key.PublicKey,
		KeyID:     l.kid,
		Algorithm: string(jose.ES256),
		Use:       "sig",
	}}}
}

// Token returns an ES256 ID token for audience with iss, aud, sub, email,
// email_verified=true, iat and exp (an hour later). A token is reused while
// it has more than five minutes to live.
func (l *LocalIssuer) Token(ctx context.Context, audience string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("auth: local token: %w", err)
	}
	if audience == "" {
		return "", fmt.Errorf("auth: local token: audience is required")
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.tokens[audience]; ok && now.Add(localTokenReuse).Before(t.exp) {
		return t.raw, nil
	}
	exp := now.Add(localTokenTTL)
	raw, err := jwt.Signed(l.signer).Claims(claims{
		Claims: jwt.Claims{
			Issuer:   l.issuer,
			Subject:  l.email,
			Audience: jwt.Audience{audience},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(exp),
		},
		Email:         l.email,
		EmailVerified: []byte("true"),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("auth: local token for %q: %w", audience, err)
	}
	if len(l.tokens) >= 64 { // audiences are few; never grow without bound
		clear(l.tokens)
	}
	l.tokens[audience] = localToken{raw: raw, exp: exp}
	return raw, nil
}
