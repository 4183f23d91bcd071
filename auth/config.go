package auth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Google's ID token issuers (it uses both spellings) and key set.
const (
	GoogleIssuer         = "https://accounts.google.com"
	googleIssuerNoScheme = "accounts.google.com"
	GoogleCertsURL       = "https://www.googleapis.com/oauth2/v3/certs"
)

// DefaultAllowListName names the allowlist in error messages unless
// Config.AllowListName says otherwise.
const DefaultAllowListName = "ALLOWED_INVOKERS"

// ClockSkew is how far in the future a token's nbf and iat may lie. Expiry
// gets no leeway.
const ClockSkew = time.Minute

// Config configures a Verifier.
type Config struct {
	// Audience is the expected aud claim, exactly (OIDC_AUDIENCE, by default
	// SERVICE_URL). Required.
	Audience string
	// Issuer is "" for Google (accepting "https://accounts.google.com" and
	// "accounts.google.com", keys fetched lazily from GoogleCertsURL), or an
	// issuer URL whose keys are found by OpenID Connect discovery when
	// NewVerifier runs (OIDC_ISSUER). It must be https, or http on a loopback
	// host.
	Issuer string
	// Allowed lists the caller emails allowed (ALLOWED_INVOKERS), compared
	// case-insensitively. Empty allows nobody.
	Allowed []string
	// AllowListName names Allowed in error messages; DefaultAllowListName if "".
	AllowListName string
	// KeySet overrides the issuer's key set (the local issuer, tests); with
	// it no discovery or key fetch happens.
	KeySet oidc.KeySet
	// HTTPClient fetches discovery documents and keys (each URL at most once
	// per 30 s, see pacedFetch); a client with a 10 s timeout if nil.
	HTTPClient *http.Client
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// validate lists every problem of the configuration.
func (c Config) validate() error {
	var errs []error
	if strings.TrimSpace(c.Audience) == "" {
		errs = append(errs, errors.New("audience is required (OIDC_AUDIENCE or SERVICE_URL)"))
	} else if strings.TrimSpace(c.Audience) != c.Audience {
		errs = append(errs, fmt.Errorf("audience %q has surrounding spaces", c.Audience))
	}
	if c.Issuer != "" {
		if err := checkIssuerURL(c.Issuer); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkEmails(c.Allowed); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("auth: config: %w: %w", pipeline.ErrInvalid, errors.Join(errs...))
}

// checkIssuerURL accepts https URLs, and http ones on a loopback host.
func checkIssuerURL(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("issuer %q: %w", issuer, err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer %q: want an absolute URL with a host and no query, fragment or user", issuer)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("issuer %q: http is only allowed on a loopback host; use https", issuer)
	}
	return fmt.Errorf("issuer %q: scheme must be https", issuer)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkEmails reports every entry of an allowlist that is not an email.
func checkEmails(emails []string) error {
	var bad []string
	for _, e := range emails {
		local, domain, ok := strings.Cut(e, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || strings.ContainsAny(e, " \t\r\n,") {
			bad = append(bad, e)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("allowlist entries are not emails: %s", quoteList(bad))
	}
	return nil
}

// quoteList formats strings as ["a", "b"] for messages.
func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
