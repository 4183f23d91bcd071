//go:build !linux

package idlemem

// dropExecutablePages does nothing where the executable's mappings cannot
// be listed (/proc/self/smaps is Linux's).
func dropExecutablePages() error { return nil }
