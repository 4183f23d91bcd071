// Package queue is the home of the queue adapters. The Queue interface they
// implement is declared by its consumer, package pipeline (pipeline.Queue);
// each backend lives in a subpackage: local (an embedded, durable dispatcher
// with Cloud Tasks semantics on bbolt) and the Cloud Tasks adapter.
package queue
