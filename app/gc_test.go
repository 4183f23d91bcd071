package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		backend string
		gogcSet bool
		want    int
		set     bool
	}{
		{"local", false, localGCPercent, true},
		{"local", true, 0, false}, // the user's GOGC stands
		{"gcp", false, 0, false},  // Go's default; Cloud Run's limit is the operator's
		{"gcp", true, 0, false},
	} {
		got, set := gcPercentFor(c.backend, c.gogcSet)
		if got != c.want || set != c.set {
			t.Errorf("gcPercentFor(%q, GOGC set %v) = %d, %v; want %d, %v", c.backend, c.gogcSet, got, set, c.want, c.set)
		}
	}
}

// `pipeline serve` on the local backend runs with localGCPercent unless GOGC
// is set, and says in its start-up line which target is in force (read back
// from the runtime, not from the setting).
func TestServeRunsWithTheLocalGCTargetUnlessGOGCIsSet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if _, ok := os.LookupEnv("GOGC"); ok {
		t.Setenv("GOGC", "") // restored afterwards
		os.Unsetenv("GOGC")
	}
	for _, c := range []struct {
		gogc string // "-": not set
		want int
	}{
		{"-", localGCPercent},
		{"", localGCPercent}, // set but empty: Go's default, as if unset
		{"150", 150},
	} {
		dir := t.TempDir()
		env := []string{"PIPELINE_FILE=" + filepath.Join("..", "pipelines"), "PIPELINE_DATA=" + filepath.Join(dir, "data"), "PIPELINE_AUTH=off"}
		if c.gogc != "-" {
			env = append(env, "GOGC="+c.gogc)
		}
		p := startServe(t, env, freePort(t))
		var line struct {
			GCPercent *int `json:"gc_percent"`
		}
		l := p.waitLine(t, `"pipeline service listening"`)
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("start-up line %q: %v", l, err)
		}
		if line.GCPercent == nil {
			t.Fatalf("GOGC=%q: the start-up line has no gc_percent:\n%s", c.gogc, p.out.String())
		}
		if *line.GCPercent != c.want {
			t.Errorf("GOGC=%q: serve runs with GC target %d, want %d", c.gogc, *line.GCPercent, c.want)
		}
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// waitLine waits (generously) for a whole line of the process's output that
// contains want, and returns it: the output is copied from a pipe, in chunks,
// so a line can be there only in part for a moment.
func (p *proc) waitLine(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := p.out.String()
		if i := strings.Index(out, want); i >= 0 {
			if j := strings.IndexByte(out[i:], '\n'); j >= 0 {
				return out[strings.LastIndexByte(out[:i], '\n')+1 : i+j]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no whole line with %q in the output:\n%s", want, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
