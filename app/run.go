package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pipelinehq/pipeline/notify"
	"github.com/pipelinehq/pipeline/notify/discord"
	"github.com/pipelinehq/pipeline/pipeline"
)

type runCmd struct {
	Pipeline string            `arg:"" optional:"" help:"Pipeline to run (default: the only one loaded)."`
	Date     string            `help:"Run date YYYY-MM-DD (default: today in the pipeline's time zone)."`
	Key      string            `help:"Run key (default: the date). Starting an existing key reports that run instead of running it again."`
	Param    map[string]string `short:"p" help:"Run parameter k=v (repeatable)."`
	Timeout  time.Duration     `default:"30m" help:"Give up waiting after this long (the run itself stays in the ledger)."`
	Verbose  bool              `short:"v" help:"Write the service's JSON logs to stderr instead of a log file."`
}

func (r *runCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if cfg.Backend != "local" {
		return exitCode{code: ExitUsage, msg: "run uses the embedded backends (PIPELINE_BACKEND=local); against gcp start runs with the service's POST /pipeline/start"}
	}
	if r.Timeout <= 0 {
		return exitCode{code: ExitUsage, msg: fmt.Sprintf("--timeout %s must be positive", r.Timeout)}
	}
	if err := preflight(cfg); err != nil {
		return err // before the log directory is created
	}
	logw, logPath, err := r.logWriter(cfg, env)
	if err != nil {
		return err
	}
	defer logw.Close()
	log := newLogger(cfg, logw)

	// The printer writes from request goroutines while this one writes too.
	stdout := &lockedWriter{w: env.stdout}
	env = &appEnv{stdout: stdout, stderr: env.stderr}
	p := &printer{w: stdout, done: make(chan struct{})}
	a, err := buildApp(ctx, cfg, log, notify.Func(p.notify))
	if err != nil {
		return err
	}
	defer a.close()
	ln, err := a.listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- a.serve(sctx, ln, nil) }()
	defer func() { stop(); <-served }()

	res, err := a.start(ctx, pipeline.StartRequest{Pipeline: r.Pipeline, Date: r.Date, Key: r.Key, Params: r.Param})
	if err != nil {
		return err
	}
	p.setRun(res.Run.ID)
	def := a.orch.Catalog().Get(res.Run.Pipeline)
	if res.Created {
		fmt.Fprintf(env.stdout, "run %s started: %d step(s), date %s (%s)\n", res.Run.ID, len(def.Steps), res.Run.Date, def.TimeZone)
	} else if res.Run.Status == pipeline.RunFailed || res.Run.Status == pipeline.RunCancelled {
		fmt.Fprintf(env.stdout, "run %s exists and %s; `pipeline resume %s` re-runs its failed step(s), --key starts a separate run\n", res.Run.ID, res.Run.Status, res.Run.ID)
	} else {
		fmt.Fprintf(env.stdout, "run %s exists (%s); following it — use --key to run again\n", res.Run.ID, res.Run.Status)
	}
	if !res.Run.Status.Terminal() {
		wait, cancel := context.WithTimeout(ctx, r.Timeout)
		defer cancel()
		if err := p.wait(wait, a.orch.Ledger(), res.Run.ID); err != nil {
			return fmt.Errorf("waiting for %s: %w (the run goes on when the service runs again: pipeline serve)", res.Run.ID, err)
		}
	}
	final, err := a.orch.Ledger().GetRun(ctx, res.Run.ID)
	if err != nil {
		return err
	}
	printSummary(env.stdout, final)
	if cfg.DiscordWebhook == "" {
		fmt.Fprintf(env.stdout, "\nDiscord (preview; set DISCORD_WEBHOOK_URL to post it):\n%s\n", discord.Preview(discord.Render(final, cfg.Revision)))
	}
	if logPath != "" {
		fmt.Fprintf(env.stdout, "logs: %s\n", logPath)
	}
	if final.Status != pipeline.RunSucceeded {
		msg := fmt.Sprintf("run %s %s: %s", final.ID, final.Status, final.Error)
		if final.Status == pipeline.RunFailed {
			msg += fmt.Sprintf("\nnext: `pipeline resume %s` re-runs its failed step(s) and what follows them", final.ID)
		}
		return exitCode{code: 1, msg: msg}
	}
	return nil
}

func (r *runCmd) logWriter(cfg *Config, env *appEnv) (io.WriteCloser, string, error) {
	if r.Verbose {
		return nopCloser{env.stderr}, "", nil
	}
	dir := filepath.Join(cfg.Data, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("log directory: %w", err)
	}
	path := filepath.Join(dir, "pipeline.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("log file: %w", err)
	}
	return f, path, nil
}

type nopCloser struct{ io.Writer }

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (nopCloser) Close() error { return nil }

// start calls the service's own start route over HTTP, as Scheduler would.
func (a *app) start(ctx context.Context, req pipeline.StartRequest) (pipeline.StartResult, error) {
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, a.baseURL+"/pipeline/start", bytes.NewReader(body))
	if err != nil {
		return pipeline.StartResult{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("X-Pipeline-Trigger", "cli")
	if a.token != nil {
		tok, err := a.token(ctx, a.audience)
		if err != nil {
			return pipeline.StartResult{}, err
		}
		hreq.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := a.client.Do(hreq)
	if err != nil {
		return pipeline.StartResult{}, fmt.Errorf("start: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return pipeline.StartResult{}, errors.New(e.Error)
		}
		return pipeline.StartResult{}, fmt.Errorf("start: %s", resp.Status)
	}
	var out struct {
		Created bool         `json:"created"`
		Run     pipeline.Run `json:"run"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return pipeline.StartResult{}, fmt.Errorf("start: decoding answer: %w", err)
	}
	return pipeline.StartResult{Run: out.Run, Created: out.Created}, nil
}

// printer prints a run's step events live and signals its end.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	runID string
	done  chan struct{}
	ended bool
}

func (p *printer) setRun(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runID = id
}

func (p *printer) notify(_ context.Context, e pipeline.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runID != "" && e.Run.ID != p.runID {
		return nil
	}
	ts := time.Now().Format("15:04:05.000")
	if s := e.Step; s != nil {
		mark, extra := "▸", ""
		switch e.Kind {
		case pipeline.EventStepSucceeded:
			mark, extra = "✓", s.Duration().Round(time.Millisecond).String()
		case pipeline.EventStepRetrying:
			mark, extra = "↻", s.Duration().Round(time.Millisecond).String()+"  "+oneLine(s.Error, 100)
		case pipeline.EventStepFailed:
			mark, extra = "✗", s.Duration().Round(time.Millisecond).String()+"  "+oneLine(s.Error, 100)
		case pipeline.EventStepWaiting:
			mark, extra = "⏳", waitDetail(*s, s.UpdatedAt)
		}
		fmt.Fprintf(p.w, "%s  %s %-20s %-10s attempt %d/%d  %s\n", ts, mark, s.Step, s.Status, s.Attempts, s.MaxAttempts, extra)
		return nil
	}
	if e.Run.Status.Terminal() && e.Run.ID == p.runID && !p.ended {
		p.ended = true
		close(p.done)
	}
	return nil
}

// wait returns when the run ends (event, or seen in the ledger) or ctx ends.
func (p *printer) wait(ctx context.Context, led pipeline.Ledger, runID string) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			// A safety net: the run may have ended through a path that
			// notified before this printer knew the run's ID.
			if r, err := led.GetRun(ctx, runID); err == nil && r.Status.Terminal() {
				return nil
			}
		}
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func printSummary(w io.Writer, r pipeline.Run) {
	fmt.Fprintf(w, "\nrun %s: %s", r.ID, r.Status)
	if !r.FinishedAt.IsZero() {
		fmt.Fprintf(w, " in %s", r.Duration().Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tATTEMPTS\tDURATION\tOUTPUT / ERROR")
	for _, s := range r.Steps {
		detail := oneLine(string(s.Output), 70)
		if s.Error != "" {
			detail = oneLine(s.Error, 70)
		}
		dur := "-"
		if d := s.Duration(); d > 0 {
			dur = d.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", s.Step, s.Status, s.Attempts, s.MaxAttempts, dur, detail)
	}
	tw.Flush()
}
