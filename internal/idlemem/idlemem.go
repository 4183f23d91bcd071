// Package idlemem hands back, once a service has started, the memory that
// only its start-up needed: the heap garbage of package initialisation and
// wiring, and the executable's pages that initialisation touched.
//
// Package initialisation runs code and reads data spread over the whole
// binary (the protobuf descriptors of the GCP clients are registered even
// when the local backend never uses them), and the kernel maps file pages in
// 64 KB windows around each touch, so a started process has nearly its whole
// executable resident although an idle service uses a few MB of it. Those
// pages are clean copies of the file: dropping them from the process (they
// stay in the page cache) costs a minor fault if one is needed again.
package idlemem

import "runtime/debug"

// Release collects the heap's garbage and returns its free pages to the
// operating system, then, on Linux, unmaps the executable's read-only pages
// from this process (they fault back from the page cache when used). Call it
// once, after start-up; it is safe to call from any goroutine while the
// service runs.
func Release() error {
	debug.FreeOSMemory()
	return dropExecutablePages()
}
