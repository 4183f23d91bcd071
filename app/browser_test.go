package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// theBrowser is one headless Chromium for the whole test binary; each test
// opens its own tabs. TestMain closes it.
var theBrowser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func closeBrowser() {
	if theBrowser.cancel != nil {
		theBrowser.cancel()
	}
}

// tab is a browser tab that records console errors and uncaught exceptions.
type tab struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// newTab opens a tab in the shared browser. Without Chromium the test is
// skipped, except under CI=true where it fails: the browser tests must run.
func newTab(t *testing.T) *tab {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal("chromium is not installed and CI=true, so the browser tests must not be skipped (apt-get install -y chromium)")
		}
		t.Skip("chromium not installed (apt-get install -y chromium): skipping the browser test")
	}
	theBrowser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		theBrowser.err = chromedp.Do(bctx)
		theBrowser.ctx, theBrowser.cancel = bctx, func() { bcancel(); acancel() }
	})
	if theBrowser.err != nil {
		t.Fatalf("starting chromium: %v", theBrowser.err)
	}
	ctx, cancel := chromedp.NewContext(theBrowser.ctx)
	t.Cleanup(cancel)
	tb := &tab{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if e.Type == cdpruntime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *cdpruntime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if x := e.ExceptionDetails.Exception; x != nil {
				msg += " " + x.Description
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				msg = fmt.Sprintf("log %s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		}
		if msg != "" {
			tb.mu.Lock()
			tb.errors = append(tb.errors, msg)
			tb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listening to the tab: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enabling the log domain: %v", err)
	}
	return tb
}

// run runs actions with a hang guard (not a timing assertion).
func (tb *tab) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// click clicks the element sel matches, as a user does (mouse events at its
// place). A click is several DevTools calls (find the node, scroll it into
// view, read its box, press); if the page's live update replaces the
// element between them, Chrome answers that the node is gone, and no press
// was sent: find the element again and click it.
func (tb *tab) click(t *testing.T, what, sel string) {
	t.Helper()
	if err := tb.doAgainIf(nodeReplaced, func() chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// doAgainIf runs action() with a hang guard (not a timing assertion), and
// a fresh action() while it fails with an error that again says is the
// page's doing (a node replaced, a context destroyed by a navigation) rather
// than a failure.
func (tb *tab) doAgainIf(again func(error) bool, action func() chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	for {
		err := chromedp.Do(ctx, action())
		if err == nil || ctx.Err() != nil || !again(err) {
			return err
		}
	}
}

// nodeReplaced reports whether err is Chrome's answer to a call on a node
// that left the document (replaced by the page meanwhile).
func nodeReplaced(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "node with given id") || strings.Contains(msg, "Node is detached from document")
}

// evalJS evaluates a JavaScript expression on the page and decodes its value.
func evalJS[T any](t *testing.T, tb *tab, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until the JavaScript expression is true on the page.
func (tb *tab) waitJS(t *testing.T, what, expr string) {
	t.Helper()
	// A navigation (a form submitted by the page, a redirect) destroys the
	// execution context the poll runs in: poll again in the new one.
	poll := func() chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(25*time.Second))
	}
	if err := tb.doAgainIf(navigatedAway, poll); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// navigatedAway reports whether err is Chrome's answer to an evaluation
// whose page navigated meanwhile.
func navigatedAway(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context with specified id") || strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "Inspected target navigated or closed")
}

// noConsoleErrors fails the test if the page logged an error.
func (tb *tab) noConsoleErrors(t *testing.T) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, e := range tb.errors {
		t.Errorf("browser: %s", e)
	}
}

// colorScheme emulates the system's light or dark preference.
func (tb *tab) colorScheme(t *testing.T, scheme string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
	if err != nil {
		t.Fatalf("emulating %s: %v", scheme, err)
	}
}

// screenshot saves the viewport at width x height as name.png in
// $PIPELINE_SCREENSHOTS, or the test's temp dir.
func (tb *tab) screenshot(t *testing.T, name string, width, height int64) {
	t.Helper()
	dir := os.Getenv("PIPELINE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	tb.run(t, "viewport for "+name, chromedp.EmulateViewport(width, height))
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	tb.run(t, "viewport back", chromedp.EmulateViewport(1280, 900))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
