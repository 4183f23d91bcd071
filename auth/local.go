package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// NewLocalIssuer makes a fresh P-256 key for an issuer URL (https, or http
// on a loopback host) and the caller email its tokens carry.
func NewLocalIssuer(issuer, email string) (*LocalIssuer, error) {
	return newLocalIssuer(issuer, email, nil)
}

// OpenLocalIssuer is NewLocalIssuer with its key kept in a file (created with
// mode 0600 when missing), so that other processes on the machine that can
// read the file (the operator commands) can mint tokens a local service
// accepts.
func OpenLocalIssuer(path, issuer, email string) (*LocalIssuer, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("auth: local issuer: generate key: %w", err)
		}
		if err = writeKey(path, key); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	return newLocalIssuer(issuer, email, key)
}

// LoadLocalIssuer is OpenLocalIssuer for a key file that must exist.
func LoadLocalIssuer(path, issuer, email string) (*LocalIssuer, error) {
	key, err := readKey(path)
	if err != nil {
		return nil, err
	}
	return newLocalIssuer(issuer, email, key)
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: local issuer key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("auth: local issuer key %s: not PEM", path)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: local issuer key %s: %w", path, err)
	}
	return key, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("auth: local issuer key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("auth: local issuer key: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("auth: local issuer key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("auth: local issuer key: %w", err)
	}
	return nil
}

func newLocalIssuer(issuer, email string, key *ecdsa.PrivateKey) (*LocalIssuer, error) {
	if err := checkIssuerURL(issuer); err != nil {
		return nil, fmt.Errorf("auth: local issuer: %w", err)
	}
	if email == "" {
		return nil, fmt.Errorf("auth: local issuer: email is required")
	}
	if err := checkEmails([]string{email}); err != nil {
		return nil, fmt.Errorf("auth: local issuer: %w", err)
	}
	if key == nil {
		// P-256: generating it takes microseconds, an RSA key tens of
		// milliseconds of every local start-up.
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("auth: local issuer: generate key: %w", err)
		}
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
