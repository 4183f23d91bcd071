// Package auth authenticates the callers of the pipeline service: it verifies
// OIDC ID tokens (Google's for Cloud Scheduler and Cloud Tasks, or any issuer
// found by OpenID Connect discovery) with github.com/coreos/go-oidc/v3 and
// checks issuer, audience, lifetime, a verified email and an allowlist,
// failing closed. It also holds the local token issuer with which the local
// queue signs its deliveries, so local mode runs the same verification path,
// and Off, the explicit "no authentication" setting of local mode.
package auth
