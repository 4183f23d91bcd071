// Package pipeline is the domain of the orchestrator: pipeline definitions, runs
// and their steps, the step state machine, the orchestrator that drives a run
// through its steps under at-least-once delivery, the interfaces it consumes
// (Ledger, Queue, Notifier) and the HTTP handlers that expose it.
//
// The package imports no cloud library: backends live in their own packages and
// implement the interfaces declared here.
package pipeline
