package fsemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long Host waits for a started emulator to answer.
const StartTimeout = 60 * time.Second

// supervisor runs the emulator command given as its arguments and, once its
// stdin closes (Stop closes it, or the test binary dies), kills the command's
// process group: gcloud puts itself, the emulator's wrapper script and the JVM
// in a group of its own.
const supervisor = `"$@" </dev/null & pid=$!; read -r _; kill -KILL -- -"$pid" "$pid" 2>/dev/null; wait`

// emulator is the one emulator of this test binary. Package state because a
// test binary has one emulator, shared by all of its tests.
var emu struct {
	once sync.Once
	host string
	err  error
	proc *process
}

// process is a started emulator.
type process struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the supervisor exits
	log   *os.File
}

// Host returns the address (host:port) of a Firestore emulator that answers.
// It is FIRESTORE_EMULATOR_HOST if set; otherwise the emulator this test
// binary started on its first call. Without an emulator the test is skipped,
// or fails when CI=true.
func Host(t testing.TB) string {
	t.Helper()
	emu.once.Do(func() { emu.host, emu.err = setUp() })
	if emu.err != nil {
		unavailable(t, emu.err)
	}
	return emu.host
}

// Main runs the tests of m, stops the emulator if they started one, and
// exits. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the emulator this binary started, if any. Later calls to Host
// report it unavailable.
func Stop() {
	emu.once.Do(func() { emu.err = errors.New("fsemu: emulator stopped") })
	if emu.proc != nil {
		emu.proc.stop()
		emu.proc = nil
		emu.err = errors.New("fsemu: emulator stopped")
	}
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("Firestore emulator unavailable and CI=true, so this test must not be skipped: %v", err)
	}
	t.Skipf("Firestore emulator unavailable (set FIRESTORE_EMULATOR_HOST, or install gcloud with the cloud-firestore-emulator component and Java): %v", err)
}

// setUp finds or starts the emulator.
func setUp() (string, error) {
	if host := os.Getenv("FIRESTORE_EMULATOR_HOST"); host != "" {
		host = strings.TrimPrefix(strings.TrimPrefix(host, "http://"), "https://")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ping(ctx, host); err != nil {
			return "", fmt.Errorf("fsemu: FIRESTORE_EMULATOR_HOST=%s does not answer: %w", host, err)
		}
		return host, nil
	}
	p, host, err := start()
	if err != nil {
		return "", err
	}
	emu.proc = p
	return host, nil
}

// start launches gcloud's emulator on a free port and waits until it answers.
func start() (*process, string, error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, "", fmt.Errorf("fsemu: gcloud not found: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	log, err := os.CreateTemp("", "fsemu-*.log")
	if err != nil {
		return nil, "", fmt.Errorf("fsemu: emulator log: %w", err)
	}
	cmd := exec.Command("bash", "-c", supervisor, "fsemu",
		gcloud, "emulators", "firestore", "start", "--host-port="+host)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_ = log.Close()
		return nil, "", fmt.Errorf("fsemu: emulator stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, "", fmt.Errorf("fsemu: start %s: %w", cmd, err)
	}
	p := &process{cmd: cmd, stdin: stdin, done: make(chan struct{}), log: log}
	go func() { _ = cmd.Wait(); close(p.done) }()

	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	for {
		if ping(ctx, host) == nil {
			return p, host, nil
		}
		select {
		case <-p.done:
			err = fmt.Errorf("fsemu: emulator exited before answering on %s:\n%s", host, p.tail())
		case <-ctx.Done():
			err = fmt.Errorf("fsemu: emulator did not answer on %s within %s:\n%s", host, StartTimeout, p.tail())
		case <-time.After(100 * time.Millisecond):
			continue
		}
		p.stop()
		return nil, "", err
	}
}

// stop closes the supervisor's stdin, which kills the emulator's process
// group, and waits for it; it kills the group itself if that takes too long.
func (p *process) stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	_ = p.log.Close()
	_ = os.Remove(p.log.Name())
}

// tail is the end of the emulator's log, for error messages.
func (p *process) tail() string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// ping asks the emulator's HTTP root, which answers 200 "Ok" once it serves.
func ping(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET / answered %s", resp.Status)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("fsemu: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
