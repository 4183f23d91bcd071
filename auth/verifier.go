package auth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pipelinehq/pipeline/pipeline"
)

// signingAlgs returns the only JWS algorithms accepted; "none" and HS* never are.
func signingAlgs() []string { return []string{oidc.RS256, oidc.ES256} }

// Verifier authenticates requests carrying an OIDC ID token as a Bearer
// token, or (NewIAPVerifier) Identity-Aware Proxy's signed header. It is
// safe for concurrent use.
type Verifier struct {
	audience string
	issuers  []string // accepted iss values
	issuer   string   // the issuer go-oidc checks in the backstop pass
	algs     []string // accepted JWS algorithms
	iap      bool     // the token is IAP's header, whose email needs no email_verified
	keySet   oidc.KeySet
	sig      *oidc.IDTokenVerifier // signature and algorithm only
	cache    *tokenCache           // verified tokens, shared by WithAllowed copies
	allowed  map[string]struct{}   // lower-cased emails
	listName string
	now      func() time.Time
	// explain names a JWKS problem behind a signature failure (discovered
	// issuers only; nil otherwise).
	explain *jwksExplainer
}

var _ pipeline.Authenticator = (*Verifier)(nil)

// NewVerifier checks cfg, listing every problem, and returns a Verifier. For
// a custom Issuer without a KeySet it runs OpenID Connect discovery now (ctx
// bounds it); Google's keys are fetched on first use.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	v := &Verifier{
		audience: cfg.Audience,
		algs:     signingAlgs(),
		keySet:   cfg.KeySet,
		cache:    newTokenCache(),
		allowed:  allowSet(cfg.Allowed),
		listName: cfg.AllowListName,
		now:      cfg.Now,
	}
	if v.listName == "" {
		v.listName = DefaultAllowListName
	}
	if v.now == nil {
		v.now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	// go-oidc takes its HTTP client from the context; key sets keep the
	// context (without its cancellation) for later fetches, which are paced
	// (a flood of forged tokens with unknown kids refetches nothing).
	client = pacedClient(client, v.now, keyRefetchInterval)
	ctx = oidc.ClientContext(ctx, client)
	if cfg.Issuer == "" {
		v.issuers = []string{GoogleIssuer, googleIssuerNoScheme}
		v.issuer = GoogleIssuer
		if v.keySet == nil {
			v.keySet = oidc.NewRemoteKeySet(ctx, GoogleCertsURL)
		}
	} else {
		v.issuers = []string{cfg.Issuer}
		v.issuer = cfg.Issuer
		if v.keySet == nil {
			ks, jwksURI, err := discoverKeySet(ctx, cfg.Issuer)
			if err != nil {
				return nil, err
			}
			v.keySet = ks
			v.explain = &jwksExplainer{uri: jwksURI, client: client}
		}
	}
	v.sig = oidc.NewVerifier(v.issuer, v.keySet, &oidc.Config{
		SupportedSigningAlgs: v.algs,
		// The claims are checked by checkClaims, which names the failed
		// check, and again by go-oidc in the backstop pass.
		SkipClientIDCheck: true,
		SkipIssuerCheck:   true,
		SkipExpiryCheck:   true,
	})
	return v, nil
}

// discoverKeySet finds the issuer's JWKS by OpenID Connect discovery and
// returns it with its URI.
func discoverKeySet(ctx context.Context, issuer string) (oidc.KeySet, string, error) {
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, "", fmt.Errorf("auth: discovery for issuer %q: %w", issuer, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, "", fmt.Errorf("auth: discovery for issuer %q: %w", issuer, err)
	}
	if meta.JWKSURI == "" {
		return nil, "", fmt.Errorf("auth: discovery for issuer %q: no jwks_uri", issuer)
	}
	if err := checkIssuerURL(meta.JWKSURI); err != nil {
		return nil, "", fmt.Errorf("auth: discovery for issuer %q: jwks_uri: %w", issuer, err)
	}
	return oidc.NewRemoteKeySet(ctx, meta.JWKSURI), meta.JWKSURI, nil
}

func allowSet(emails []string) map[string]struct{} {
	m := make(map[string]struct{}, len(emails))
	for _, e := range emails {
		m[strings.ToLower(e)] = struct{}{}
	}
	return m
}

// WithAllowed returns a Verifier that shares v's keys, issuer and audience
// but allows the given emails, named listName in messages (for example
// ALLOWED_OPERATORS for the operator endpoints).
func (v *Verifier) WithAllowed(listName string, emails []string) (*Verifier, error) {
	if err := checkEmails(emails); err != nil {
		return nil, fmt.Errorf("auth: %s: %w: %w", listName, pipeline.ErrInvalid, err)
	}
	if listName == "" {
		listName = DefaultAllowListName
	}
	c := *v
	c.allowed = allowSet(emails)
	c.listName = listName
	return &c, nil
}

// Allowed reports whether email is on the allowlist (case-insensitively).
func (v *Verifier) Allowed(email string) bool {
	_, ok := v.allowed[strings.ToLower(email)]
	return ok
}

// Authenticate verifies the request's "Authorization: Bearer <ID token>":
// signature (RS256 or ES256 by a key of the issuer), iss, aud, exp, nbf and
// iat (ClockSkew allowed), email present with email_verified true or "true"
// (these failures wrap pipeline.ErrUnauthorized), then the email against the
// allowlist (pipeline.ErrForbidden). The caller's email is lower-cased. A
// token seen before is taken from a short cache, skipping only the signature.
// An IAP verifier reads the X-Goog-IAP-JWT-Assertion header instead.
func (v *Verifier) Authenticate(r *http.Request) (pipeline.Caller, error) {
	raw, err := v.rawToken(r)
	if err != nil {
		return pipeline.Caller{}, err
	}
	c, err := v.verifyToken(r.Context(), raw)
	if err != nil {
		return pipeline.Caller{}, err
	}
	if !v.Allowed(c.Email) {
		if len(v.allowed) == 0 {
			return pipeline.Caller{}, forbidden("caller %q is not in %s (the list is empty: nobody is allowed)", c.Email, v.listName)
		}
		return pipeline.Caller{}, forbidden("caller %q is not in %s", c.Email, v.listName)
	}
	return pipeline.Caller{Email: strings.ToLower(c.Email), Subject: c.Subject}, nil
}

// rawToken is the request's token: the bearer token, or IAP's assertion.
func (v *Verifier) rawToken(r *http.Request) (string, error) {
	if v.iap {
		return iapAssertion(r)
	}
	return bearerToken(r)
}

// maxTokenLen bounds the work spent on a token; Google's are about 1 KB.
const maxTokenLen = 16 << 10

// bearerToken extracts the token of the one Authorization header. It never
// echoes the token.
func bearerToken(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", unauthorized(`Authorization header: missing (want "Bearer <OIDC ID token>")`)
	case 1:
	default:
		return "", unauthorized("Authorization header: sent %d times, want once", len(vals))
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok {
		return "", unauthorized(`Authorization header: want "Bearer <OIDC ID token>"`)
	}
	if !strings.EqualFold(scheme, "Bearer") {
		if len(scheme) > 16 {
			scheme = scheme[:16] + "..."
		}
		return "", unauthorized("Authorization header: scheme %q is not Bearer", scheme)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", unauthorized("Authorization header: Bearer token is empty")
	}
	if len(tok) > maxTokenLen {
		return "", unauthorized("token: %d bytes, longer than the %d allowed", len(tok), maxTokenLen)
	}
	return tok, nil
}

// unauthorized makes an error wrapping pipeline.ErrUnauthorized (401).
func unauthorized(format string, args ...any) error {
	return fmt.Errorf("auth: %s: %w", fmt.Sprintf(format, args...), pipeline.ErrUnauthorized)
}

// forbidden makes an error wrapping pipeline.ErrForbidden (403).
func forbidden(format string, args ...any) error {
	return fmt.Errorf("auth: %s: %w", fmt.Sprintf(format, args...), pipeline.ErrForbidden)
}
