package app

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// served is a `pipeline serve` running in-process.
type served struct {
	addr string // the bound address, from the start-up log line
	data string // its data directory
	out  *syncBuffer
	done chan struct{} // closed when serve has returned, with err set
	err  error
}

// serveInProcess runs `pipeline serve --port 0 --no-cron ARGS...` on the
// embedded backends in a fresh data directory and waits for its start-up
// log line. The server stops when the test ends.
func serveInProcess(t *testing.T, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{out: &syncBuffer{}, done: make(chan struct{}), data: filepath.Join(t.TempDir(), "data")}
	all := append([]string{"serve", "--port", "0", "--no-cron", "--file", repoPipelines, "--data", s.data}, args...)
	go func() {
		defer close(s.done)
		s.err = runCLI(ctx, all, newOptions([]Option{WithExampleSteps(), WithOutput(s.out, s.out)}))
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if addr := listeningAddr(s.out.String()); addr != "" {
			s.addr = addr
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("serve ended: %v\n%s", s.err, s.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start:\n%s", s.out.String())
	return nil
}

// listeningAddr finds the address in the "pipeline service listening" log line.
func listeningAddr(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Message string `json:"message"`
			Addr    string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "pipeline service listening" {
			return line.Addr
		}
	}
	return ""
}

func TestListenHost(t *testing.T) {
	for _, tc := range []struct {
		given   string
		authOff bool
		want    string
	}{
		{"", false, ""},                 // auth on: all interfaces (Cloud Run)
		{"", true, "127.0.0.1"},         // auth off: loopback unless told otherwise
		{"0.0.0.0", true, "0.0.0.0"},    // told otherwise, explicitly
		{"10.1.2.3", false, "10.1.2.3"}, // given
		{"::1", true, "::1"},
	} {
		if got := listenHost(tc.given, tc.authOff); got != tc.want {
			t.Errorf("listenHost(%q, authOff %v) = %q, want %q", tc.given, tc.authOff, got, tc.want)
		}
	}
}

// Auth off (PIPELINE_AUTH=off) without a host listens on loopback only.
func TestServeWithAuthOffListensOnLoopback(t *testing.T) {
	s := serveInProcess(t, "--auth", "off")
	host, _, err := net.SplitHostPort(s.addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("listening on %q, want 127.0.0.1\n%s", s.addr, s.out.String())
	}
	if !strings.Contains(s.out.String(), "AUTHENTICATION IS OFF") {
		t.Fatalf("no loud warning:\n%s", s.out.String())
	}
}

// With auth on and no host, serve listens on every interface (Cloud Run).
func TestServeWithAuthOnListensOnAllInterfaces(t *testing.T) {
	s := serveInProcess(t)
	host, _, err := net.SplitHostPort(s.addr)
	if err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsUnspecified() {
		t.Fatalf("listening on %q, want all interfaces\n%s", s.addr, s.out.String())
	}
}

// serve --dev: auth off, loopback only, announced; a plain curl works.
func TestServeDev(t *testing.T) {
	s := serveInProcess(t, "--dev")
	host, port, err := net.SplitHostPort(s.addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("listening on %q, want 127.0.0.1\n%s", s.addr, s.out.String())
	}
	for _, want := range []string{"DEVELOPMENT MODE", "AUTHENTICATION IS OFF", "127.0.0.1:" + port} {
		if !strings.Contains(s.out.String(), want) {
			t.Errorf("start-up output lacks %q:\n%s", want, s.out.String())
		}
	}
	resp, err := http.Get("http://" + s.addr + "/pipeline/runs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /pipeline/runs without a token: %s, want 200 in --dev", resp.Status)
	}
}

// --dev with an explicit host listens there: the address is the user's choice.
func TestServeDevWithExplicitHost(t *testing.T) {
	s := serveInProcess(t, "--dev", "--host", "0.0.0.0")
	host, _, err := net.SplitHostPort(s.addr)
	if err != nil || !net.ParseIP(host).IsUnspecified() {
		t.Fatalf("listening on %q, want 0.0.0.0\n%s", s.addr, s.out.String())
	}
}
