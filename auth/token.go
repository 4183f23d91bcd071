package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4/jwt"
)

// claims are the ID token claims the Verifier looks at.
type claims struct {
	jwt.Claims
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
}

// header is the part of the JOSE header read before verification, only to
// name the failed check; go-oidc enforces the algorithms itself.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// verifyToken checks the token's signature with go-oidc, then its claims, and
// returns them. Every failure wraps pipeline.ErrUnauthorized.
func (v *Verifier) verifyToken(ctx context.Context, raw string) (claims, error) {
	now := v.now()
	if c, ok := v.cache.get(raw, now); ok {
		// The same bytes passed every check below not long ago; the
		// time-dependent checks run again.
		if err := v.checkClaims(c, now); err != nil {
			return claims{}, err
		}
		return c, nil
	}
	h, err := v.peekHeader(raw)
	if err != nil {
		return claims{}, err
	}
	tok, err := v.sig.Verify(ctx, raw)
	if err != nil {
		if why := v.explain.explain(ctx, h.Alg, h.Kid, now); why != "" {
			return claims{}, unauthorized("signature: no usable key for the token (alg %q, kid %q): %s", h.Alg, h.Kid, why)
		}
		return claims{}, unauthorized("signature: no key of the issuer verifies the token (alg %q, kid %q): %v", h.Alg, h.Kid, err)
	}
	var payload json.RawMessage
	if err := tok.Claims(&payload); err != nil {
		return claims{}, unauthorized("token: claims: %v", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return claims{}, unauthorized("token: claims: %v", err)
	}
	if err := v.checkClaims(c, now); err != nil {
		return claims{}, err
	}
	if err := v.backstop(ctx, raw, payload); err != nil {
		return claims{}, err
	}
	v.cache.put(raw, c, now)
	return c, nil
}

// peekHeader decodes the JOSE header to refuse bad tokens with a clear
// message before any key is looked up.
func (v *Verifier) peekHeader(raw string) (header, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return header{}, unauthorized("token: malformed: a JWT has 3 dot-separated parts, this has %d", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return header{}, unauthorized("token: malformed header: %v", err)
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return header{}, unauthorized("token: malformed header: %v", err)
	}
	if !slices.Contains(v.algs, h.Alg) {
		return header{}, unauthorized("signature: algorithm %q is refused (accepted: %s)", h.Alg, strings.Join(v.algs, ", "))
	}
	return h, nil
}

// checkClaims checks the verified claims in the order a runbook reads them:
// who issued the token, for whom, when, and whose email it carries.
func (v *Verifier) checkClaims(c claims, now time.Time) error {
	if !slices.Contains(v.issuers, c.Issuer) {
		if len(v.issuers) == 1 {
			return unauthorized("issuer: expected %q, got %q", v.issuers[0], c.Issuer)
		}
		return unauthorized("issuer: expected one of %s, got %q", quoteList(v.issuers), c.Issuer)
	}
	if !slices.Contains(c.Audience, v.audience) {
		return unauthorized("audience: expected %q, got %s", v.audience, quoteList(c.Audience))
	}
	if c.Expiry == nil {
		return unauthorized("exp: claim missing")
	}
	if exp := c.Expiry.Time(); !now.Before(exp) {
		return unauthorized("token expired at %s (now %s)", stamp(exp), stamp(now))
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time(); nbf.After(now.Add(ClockSkew)) {
			return unauthorized("token not valid before %s (nbf; now %s, skew allowed %s)", stamp(nbf), stamp(now), ClockSkew)
		}
	}
	if c.IssuedAt == nil {
		return unauthorized("iat: claim missing")
	}
	if iat := c.IssuedAt.Time(); iat.After(now.Add(ClockSkew)) {
		return unauthorized("token issued in the future at %s (iat; now %s, skew allowed %s)", stamp(iat), stamp(now), ClockSkew)
	}
	if c.Email == "" {
		return unauthorized("email: claim missing (mint the ID token with the email included, e.g. gcloud --include-email)")
	}
	if v.iap {
		// IAP signs the email it authenticated; its assertion has no
		// email_verified claim.
		return nil
	}
	switch ev := strings.TrimSpace(string(c.EmailVerified)); ev {
	case "true", `"true"`:
	case "":
		return unauthorized("email_verified is missing, want true")
	default:
		return unauthorized("email_verified is %s, want true", ev)
	}
	return nil
}

// backstop has go-oidc check issuer, audience and expiry too, over the
// payload whose signature the first pass verified: a second opinion that
// only fails if checkClaims has a hole.
func (v *Verifier) backstop(ctx context.Context, raw string, payload []byte) error {
	full := oidc.NewVerifier(v.issuer, verifiedPayload{raw: raw, payload: payload}, &oidc.Config{
		ClientID:             v.audience,
		SupportedSigningAlgs: v.algs,
		Now:                  v.now,
	})
	if _, err := full.Verify(ctx, raw); err != nil {
		return unauthorized("token: %v", err)
	}
	return nil
}

// verifiedPayload is a key set for one token whose signature is already
// verified: it returns that token's payload and refuses any other token.
type verifiedPayload struct {
	raw     string
	payload []byte
}

func (p verifiedPayload) VerifySignature(_ context.Context, jwt string) ([]byte, error) {
	if jwt != p.raw {
		return nil, errNotVerified
	}
	return p.payload, nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errNotVerified = constError("auth: token was not verified")

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
