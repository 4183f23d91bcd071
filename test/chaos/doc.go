// Package chaos is the reliability proof suite: it drives the real service
// (the pipeline binary for kill -9 and SIGTERM, the same wiring in-process
// through package app elsewhere) while injecting faults at the interfaces
// (decorators of the ledger, the queue and the notifier) and on the wire (a
// TCP proxy in front of the emulators and the Discord stand-in), and prints
// one figure line per scenario:
//
//	chaos <scenario> <backend>: tried N / completed N / lost N / doubled N / stuck N / recovery Xs ...
//
// The package itself holds what the service under test needs beyond the stock
// binary: the "chaos" step kind, which records every body execution in a file
// outside the ledger so that a killed process cannot lose the count, and the
// crash points (CHAOS_CRASH_POINT), a ledger decorator that kills the process
// right after chosen writes have committed. The
// scenarios are its tests; CHAOS_SIZE=full runs them at the sizes that
// docs/reliability.md reports.
package chaos
