// Package testbin builds a command of this module once per test binary, for
// tests that run it as a process (kill -9, SIGTERM, restarts).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// built holds one build per package path: a test binary may build more than
// one command, and each is built once.
var built sync.Map // package path -> *build

type build struct {
	once sync.Once
	path string
	err  error
}

// Build compiles the command at pkg (a path as `go build` takes it, relative
// to the test's package directory) once per test binary and returns the
// executable's path. A failed build fails the test.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := built.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "testbin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(filepath.Clean(pkg)))
		out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}
