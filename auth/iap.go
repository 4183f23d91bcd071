package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Identity-Aware Proxy's signed header: its issuer, the key set it signs with
// (ES256 only) and the header that carries the assertion.
const (
	IAPIssuer  = "https://cloud.google.com/iap"
	IAPKeysURL = "https://www.gstatic.com/iap/verify/public_key-jwk"
	IAPHeader  = "X-Goog-IAP-JWT-Assertion"
)

// IAPConfig configures a Verifier of Identity-Aware Proxy's signed header.
type IAPConfig struct {
	// Audience is the expected aud claim, exactly (IAP_AUDIENCE), as the
	// IAP console shows it: /projects/NUMBER/global/backendServices/ID
	// behind a load balancer. Required; it must start with /projects/.
	Audience string
	// Allowed lists the caller emails allowed; empty allows nobody.
	Allowed []string
	// AllowListName names Allowed in error messages.
	AllowListName string
	// KeysURL overrides IAPKeysURL (a test's key set stand-in); https, or
	// http on a loopback host.
	KeysURL string
	// HTTPClient fetches the keys; a client with a 10 s timeout if nil.
	HTTPClient *http.Client
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

func (c IAPConfig) validate() error {
	var errs []error
	switch a := c.Audience; {
	case strings.TrimSpace(a) == "":
		errs = append(errs, errors.New("IAP audience is required"))
	case strings.TrimSpace(a) != a:
		errs = append(errs, fmt.Errorf("IAP audience %q has surrounding spaces", a))
	case !strings.HasPrefix(a, "/projects/"):
		errs = append(errs, fmt.Errorf("IAP audience %q: want /projects/NUMBER/global/backendServices/ID, as the IAP console's \"Signed header JWT audience\" shows it", a))
	}
	if c.KeysURL != "" {
		if err := checkIssuerURL(c.KeysURL); err != nil {
			errs = append(errs, fmt.Errorf("IAP keys URL: %w", err))
		}
	}
	if err := checkEmails(c.Allowed); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("auth: IAP config: %w: %w", pipeline.ErrInvalid, errors.Join(errs...))
}

// NewIAPVerifier returns a Verifier of the X-Goog-IAP-JWT-Assertion header
// that Identity-Aware Proxy adds to every request it lets through: an ES256
// JWT by a key of IAP's key set, issuer IAPIssuer, the configured audience,
// unexpired, with an email (IAP asserts it: no email_verified claim). The
// caller is its email, checked against the allowlist like a bearer token's.
// A request without the header, or with a bad one, is unauthorized: there is
// no fallback to the Authorization header. Keys are fetched on first use.
func NewIAPVerifier(ctx context.Context, cfg IAPConfig) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	keysURL := cfg.KeysURL
	if keysURL == "" {
		keysURL = IAPKeysURL
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	v := &Verifier{
		audience: cfg.Audience,
		issuers:  []string{IAPIssuer},
		issuer:   IAPIssuer,
		algs:     []string{oidc.ES256},
		iap:      true,
		keySet:   oidc.NewRemoteKeySet(oidc.ClientContext(ctx, client), keysURL),
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
	v.sig = oidc.NewVerifier(v.issuer, v.keySet, &oidc.Config{
		SupportedSigningAlgs: v.algs,
		SkipClientIDCheck:    true,
		SkipIssuerCheck:      true,
		SkipExpiryCheck:      true,
	})
	return v, nil
}

// iapAssertion extracts the one X-Goog-IAP-JWT-Assertion header. It never
// echoes the assertion.
func iapAssertion(r *http.Request) (string, error) {
	vals := r.Header.Values(IAPHeader)
	switch len(vals) {
	case 0:
		return "", unauthorized("%s header: missing (IAP_AUDIENCE is set: requests must come through Identity-Aware Proxy)", IAPHeader)
	case 1:
	default:
		return "", unauthorized("%s header: sent %d times, want once", IAPHeader, len(vals))
	}
	tok := strings.TrimSpace(vals[0])
	if tok == "" {
		return "", unauthorized("%s header: empty", IAPHeader)
	}
	if len(tok) > maxTokenLen {
		return "", unauthorized("%s header: %d bytes, longer than the %d allowed", IAPHeader, len(tok), maxTokenLen)
	}
	return tok, nil
}
