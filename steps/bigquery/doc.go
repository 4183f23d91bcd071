// Package bigquery is the `bigquery.query` step kind: an asynchronous step
// (steps.AsyncStep) that runs a BigQuery query job, such as a daily MERGE,
// and waits for it without holding a request. The job ID is derived from the
// run, step, generation and attempt, so that a repeated start is refused by
// BigQuery itself (409 Already Exists) and the existing job is adopted
// instead of running the query twice.
//
// It talks to the BigQuery v2 REST API through google.golang.org/api/bigquery/v2
// with Google's default credentials, created on first use; Register adds the
// kind to a registry (the stock binary does). bigquerytest is an in-memory
// stand-in of the jobs API for tests.
package bigquery
