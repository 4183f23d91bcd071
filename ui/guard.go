package ui

import (
	"net/http"
	"net/url"
	"strings"
)

// CSRFHeader must be present (with the value "1") on every state-changing
// request of the dashboard. A foreign page cannot set a custom header on a
// cross-origin request without a CORS preflight, which the service never
// grants.
const CSRFHeader = "X-Pipeline-CSRF"

// crossSite reports why a state-changing request may come from a foreign
// page, or "" when it is same-origin. Browsers send Sec-Fetch-Site and
// Origin on such requests; clients that are not browsers (Cloud Tasks,
// Cloud Scheduler, the CLI) send neither and are judged by their token alone.
func crossSite(r *http.Request) string {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return "Sec-Fetch-Site is " + s
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if o == "null" || err != nil || !strings.EqualFold(u.Host, r.Host) {
			return "Origin " + o + " is not this service (" + r.Host + ")"
		}
	}
	return ""
}

// safeMethod reports whether a method changes nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Guard refuses state-changing requests that a browser marks as coming from
// another site (Sec-Fetch-Site, Origin), for the whole service: with auth off,
// or behind `pipeline ui`, the browser's requests carry authority that a
// foreign page must not borrow. Requests without those headers (servers,
// the CLI) pass through unchanged.
func Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) {
			if why := crossSite(r); why != "" {
				writeJSONError(w, http.StatusForbidden, "cross-site request refused: "+why+"; use the dashboard's own pages")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// checkAction is the dashboard's own check on an action: same origin (as
// Guard) and the CSRF header.
func checkAction(r *http.Request) string {
	if why := crossSite(r); why != "" {
		return "cross-site request refused: " + why
	}
	if r.Header.Get(CSRFHeader) != "1" {
		return "missing header " + CSRFHeader + ": actions are sent by the dashboard's own pages"
	}
	return ""
}
