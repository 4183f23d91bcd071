// Package ui is the web dashboard of the pipeline service, served under /ui/
// by `pipeline serve`: the daily grid of every pipeline (days as columns,
// steps as rows), each run's page with its step graph and live updates, the
// operator actions (resume, cancel, re-run a step, start, backfill), run
// statistics and the local queue. Pages are Go html/template with every asset
// embedded; there is no JavaScript framework and no build step.
//
// Access follows the API's rules: viewers (ALLOWED_VIEWERS) read, operators
// (ALLOWED_OPERATORS) read and act, both closed when empty, verified by the
// same authenticators as the API. Every state-changing request must come from
// the dashboard's own origin and carry a header a foreign page cannot set
// (see Guard). Proxy is the local reverse proxy behind `pipeline ui --url`,
// which adds the user's identity token to each request.
package ui
