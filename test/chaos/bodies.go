package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// Kind is the step kind name pipeline files use for counted bodies.
const Kind = "chaos"

// BodyLogName is the file, in the service's data directory, where bodies are
// recorded.
const BodyLogName = "bodies.log"

// Hook runs inside a body after its start is recorded (in-process tests
// use it to act while a body is in flight). A non-nil error fails the body.
type Hook func(ctx context.Context, in steps.Input) error

// Register adds the "chaos" kind to reg: each body appends a "start" line to
// the file at path, sleeps its `sleep` setting (or until its context ends),
// calls hook (if any) and, if its context is still live, appends an "end"
// line. Lines are single appends to
// an O_APPEND file, so a kill -9 loses none that were written.
func Register(reg *steps.Registry, path string, hook Hook) {
	rec := &recorder{path: path}
	reg.Register(Kind, func(settings map[string]any) (steps.Step, error) {
		var sleep time.Duration
		if v, ok := settings["sleep"]; ok {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("chaos: sleep must be a duration string, got %T", v)
			}
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("chaos: sleep %q is not a duration", s)
			}
			sleep = d
		}
		return steps.StepFunc(func(ctx context.Context, in steps.Input) (json.RawMessage, error) {
			if err := rec.write("start", in); err != nil {
				return nil, err
			}
			if sleep > 0 {
				t := time.NewTimer(sleep)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil, ctx.Err()
				}
			}
			if hook != nil {
				if err := hook(ctx, in); err != nil {
					return nil, err
				}
			}
			if err := ctx.Err(); err != nil {
				// The step's timeout (or a shutdown) ended the body: its
				// result is not used, so it did not complete.
				return nil, err
			}
			if err := rec.write("end", in); err != nil {
				return nil, err
			}
			return json.RawMessage(fmt.Sprintf(`{"pid":%d,"attempt":%d}`, os.Getpid(), in.Attempt)), nil
		}), nil
	})
}

type recorder struct {
	path string
	mu   sync.Mutex
}

func (r *recorder) write(event string, in steps.Input) error {
	line := fmt.Sprintf("%s %s %s %d %d %d\n", event, in.RunID, in.Step, in.Attempt, os.Getpid(), time.Now().UnixNano())
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return fmt.Errorf("chaos: body log: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: body log: %w", err)
	}
	_, werr := f.WriteString(line)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("chaos: body log: %w", werr)
	}
	return nil
}

// Body is one recorded body event.
type Body struct {
	Event   string // start or end
	RunID   string
	Step    string
	Attempt int
	PID     int
	At      time.Time
}

// ReadBodies reads the body log at path (none yet: no bodies).
func ReadBodies(path string) ([]Body, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Body
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 6 {
			return nil, fmt.Errorf("chaos: body log %s: bad line %q", path, sc.Text())
		}
		att, err1 := strconv.Atoi(fs[3])
		pid, err2 := strconv.Atoi(fs[4])
		ns, err3 := strconv.ParseInt(fs[5], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("chaos: body log %s: bad line %q: %w", path, sc.Text(), err)
		}
		out = append(out, Body{Event: fs[0], RunID: fs[1], Step: fs[2], Attempt: att, PID: pid, At: time.Unix(0, ns)})
	}
	return out, sc.Err()
}
