package doctor

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Google's rules for the emails a token can be signed as
// (https://cloud.google.com/iam/docs/service-accounts-create): a
// user-managed service account is ACCOUNT_ID@PROJECT_ID.iam.gserviceaccount.com,
// its account id 6–30 characters of lowercase letters, digits and hyphens,
// starting with a letter and not ending with a hyphen. A project's default
// accounts are PROJECT_NUMBER-compute@developer.gserviceaccount.com and
// PROJECT_ID@appspot.gserviceaccount.com.
//
// Compiled on first use, not at every start (a bounded repetition compiles
// to a large program).
var (
	accountIDRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]*[a-z0-9]$`) })
	accountIDChar = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9-]*$`) })
	projectRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9.-]*[a-z0-9]$`) }) // a domain-scoped project carries dots
	computeRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+-compute$`) })
)

// accountRule is the rule in one sentence, for findings.
const accountRule = "a service account email is ACCOUNT_ID@PROJECT_ID.iam.gserviceaccount.com, whose account id has 6–30 characters " +
	"(lowercase letters, digits, hyphens), starts with a letter and does not end with a hyphen; " +
	"or a project's default account PROJECT_NUMBER-compute@developer.gserviceaccount.com or PROJECT_ID@appspot.gserviceaccount.com"

// ServiceAccountProblem says what keeps email from being a service account
// email Google could have issued, or "" when it can be one.
func ServiceAccountProblem(email string) string {
	id, domain, ok := strings.Cut(email, "@")
	if !ok || id == "" || domain == "" {
		return "is not an email"
	}
	switch {
	case domain == "developer.gserviceaccount.com":
		if !computeRE().MatchString(id) {
			return fmt.Sprintf("%q is not a default compute account (PROJECT_NUMBER-compute)", id)
		}
		return ""
	case domain == "appspot.gserviceaccount.com":
		if !projectRE().MatchString(id) {
			return fmt.Sprintf("%q is not a project id", id)
		}
		return ""
	case !strings.HasSuffix(domain, ".iam.gserviceaccount.com"):
		return fmt.Sprintf("domain %q is not a service account's (PROJECT_ID.iam.gserviceaccount.com)", domain)
	}
	if p := strings.TrimSuffix(domain, ".iam.gserviceaccount.com"); !projectRE().MatchString(p) {
		return fmt.Sprintf("%q is not a project id", p)
	}
	switch n := len(id); {
	case n < 6 || n > 30:
		return fmt.Sprintf("account id %q has %d characters; Google's account ids have 6–30", id, n)
	case !accountIDChar().MatchString(id):
		return fmt.Sprintf("account id %q has characters other than lowercase letters, digits and hyphens", id)
	case !accountIDRE().MatchString(id):
		return fmt.Sprintf("account id %q must start with a letter and not end with a hyphen", id)
	}
	return ""
}
