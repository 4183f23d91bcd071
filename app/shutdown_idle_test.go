package app

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A `pipeline serve` with nothing in flight closes a connection that was
// dialled but never carried a request as soon as it shuts down, instead of
// letting http.Server.Shutdown wait for it (it waits until such a connection
// has been new for 5 s), and then exits.
//
// The bound below is on the mechanism, not on speed: the server's own 5 s
// rule cannot close the connection before 5 s after it was accepted, and the
// test gives the fixed server 4 s from the dial, which a loaded machine
// still meets by a wide margin (the close follows SIGTERM by milliseconds).
func TestServeClosesAnUnusedConnectionAtSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	env := []string{"PIPELINE_FILE=" + filepath.Join("..", "pipelines"), "PIPELINE_DATA=" + filepath.Join(dir, "data"), "PIPELINE_AUTH=off"}
	port := freePort(t)
	p := startServe(t, env, port)

	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dialled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The server must close the connection: a read returns EOF (or a reset).
	_ = conn.SetReadDeadline(dialled.Add(4 * time.Second))
	_, rerr := conn.Read(make([]byte, 1))
	closedAfter := time.Since(dialled)
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept a connection that never carried a request open 4 s after SIGTERM (http.Server.Shutdown waiting on it)")
	}
	if rerr != io.EOF && !errors.Is(rerr, syscall.ECONNRESET) {
		t.Fatalf("read on the unused connection: %v, want EOF", rerr)
	}

	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, p.out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not exit within 60 s of SIGTERM:\n%s", p.out.String())
	}
	t.Logf("unused connection closed %v after the dial, exit %v after it", closedAfter.Round(time.Millisecond), time.Since(dialled).Round(time.Millisecond))
}
