package pipeline

import "net/http"

// Caller is the verified identity behind a request.
type Caller struct {
	Email   string `json:"email"`
	Subject string `json:"subject,omitempty"`
}

// Authenticator verifies the caller of a request. It fails closed: an error
// wraps ErrUnauthorized (no or bad credentials) or ErrForbidden (a verified
// caller that is not allowed), and its message names the check that failed.
type Authenticator interface {
	Authenticate(r *http.Request) (Caller, error)
}
