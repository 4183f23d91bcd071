package auth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// DiscoveryHandler serves the issuer's OpenID Connect discovery document at
// <issuer path>/.well-known/openid-configuration and its keys at
// <issuer path>/jwks, so a Verifier configured with Issuer (and no KeySet)
// finds them. Mount it at the root of a server whose base URL is the issuer.
func (l *LocalIssuer) DiscoveryHandler() http.Handler {
	u, _ := url.Parse(l.issuer) // checked by NewLocalIssuer
	base := strings.TrimSuffix(u.Path, "/")
	discoveryPath := base + "/.well-known/openid-configuration"
	jwksPath := base + "/jwks"
	doc := map[string]any{
		"issuer":                                l.issuer, // iss must match it exactly
		"jwks_uri":                              strings.TrimSuffix(l.issuer, "/") + "/jwks",
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"claims_supported":                      []string{"iss", "aud", "sub", "email", "email_verified", "iat", "exp"},
	}
	// Marshalling strings and a P-256 public key cannot fail.
	discovery, _ := json.Marshal(doc)
	jwks, _ := json.Marshal(l.JWKS())
	return ServeDiscovery(discoveryPath, discovery, jwksPath, jwks)
}

// ServeDiscovery serves a discovery document and a JWKS, already encoded,
// at their paths (GET and HEAD only): the HTTP side of an OIDC issuer.
func ServeDiscovery(discoveryPath string, discovery []byte, jwksPath string, jwks []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		switch r.URL.Path {
		case discoveryPath:
			body = discovery
		case jwksPath:
			body = jwks
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	})
}
