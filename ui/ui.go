package ui

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

//go:embed templates/*.html assets/*
var files embed.FS

// Prefix is where the dashboard is mounted.
const Prefix = "/ui/"

// Config wires the dashboard.
type Config struct {
	Orchestrator *pipeline.Orchestrator
	// Viewers may read (ALLOWED_VIEWERS); Operators may read and act
	// (ALLOWED_OPERATORS). Both required unless AuthOff; use Closed for an
	// empty list.
	Viewers   pipeline.Authenticator
	Operators pipeline.Authenticator
	// BehindIAP says Viewers and Operators verify Identity-Aware Proxy's
	// signed header: a 401 then says to come through IAP.
	BehindIAP bool
	// AuthOff lets everyone read and act (PIPELINE_AUTH=off, local only);
	// every page says so.
	AuthOff bool
	// Backend is "local" or "gcp".
	Backend string
	// Project is the Google Cloud project of the Cloud Logging links.
	Project string
	// Queue lists the local queue's tasks; nil on the gcp backend.
	Queue Queue
	// TasksConsoleURL is the Cloud Tasks console page of the queue (gcp).
	TasksConsoleURL string
	Logger          *slog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Handler serves the dashboard under Prefix.
type Handler struct {
	cfg Config
	o   *pipeline.Orchestrator
	led pipeline.Ledger
	mux *http.ServeMux
	log *slog.Logger
	// tmplFS holds the templates (the embedded files), parsed by
	// templates on first use into pages or parseErr.
	tmplFS    fs.FS
	parseOnce sync.Once
	pages     map[string]*template.Template
	parseErr  error
}

// New returns the dashboard's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Orchestrator == nil {
		return nil, errors.New("ui: no orchestrator")
	}
	if !cfg.AuthOff && (cfg.Viewers == nil || cfg.Operators == nil) {
		return nil, errors.New("ui: viewers and operators authenticators are required unless auth is off (use ui.Closed for an empty list)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, o: cfg.Orchestrator, led: cfg.Orchestrator.Ledger(), log: cfg.Logger, tmplFS: files}
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		return nil, fmt.Errorf("ui: assets: %w", err)
	}
	m := http.NewServeMux()
	static := http.StripPrefix("/ui/assets/", http.FileServerFS(assets))
	m.Handle("GET /ui/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		static.ServeHTTP(w, r)
	}))
	m.HandleFunc("GET /ui/{$}", h.page(h.grid))
	m.HandleFunc("GET /ui/runs/{run}", h.page(h.run))
	m.HandleFunc("GET /ui/stats", h.page(h.stats))
	m.HandleFunc("GET /ui/queue", h.page(h.queue))
	m.HandleFunc("POST /ui/api/runs/{run}/resume", h.action(h.resume))
	m.HandleFunc("POST /ui/api/runs/{run}/cancel", h.action(h.cancel))
	m.HandleFunc("POST /ui/api/runs/{run}/steps/{step}/rerun", h.action(h.rerun))
	m.HandleFunc("POST /ui/api/start", h.action(h.start))
	m.HandleFunc("POST /ui/api/backfill", h.action(h.backfill))
	m.HandleFunc("POST /ui/api/pipelines/{pipeline}/pause", h.action(h.pause))
	m.HandleFunc("POST /ui/api/pipelines/{pipeline}/unpause", h.action(h.unpause))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, access{}, fmt.Errorf("%w: no dashboard page at %s %s (pages: /ui/, /ui/runs/RUN, /ui/stats, /ui/queue)", pipeline.ErrNotFound, r.Method, r.URL.Path))
	})
	h.mux = m
	return h, nil
}

// ServeHTTP serves the dashboard.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.mux.ServeHTTP(w, r)
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	Access  access
	Backend string
	Now     time.Time
	// Live is the URL the page polls for its main part (empty: not live).
	Live string
	Data any
}

// pageFunc builds a page: its template name and view.
type pageFunc func(ctx context.Context, r *http.Request, a access) (string, view, error)

// page authorizes, builds and renders a page; with ?part=main only the
// page's main part is rendered (live updates).
func (h *Handler) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := h.authorize(r)
		if err != nil {
			h.fail(w, r, a, err)
			return
		}
		name, v, err := fn(r.Context(), r, a)
		if err != nil {
			h.fail(w, r, a, err)
			return
		}
		v.Access, v.Backend, v.Now = a, h.cfg.Backend, h.cfg.Now()
		tmpl := "layout"
		if r.URL.Query().Get("part") == "main" {
			tmpl = "main"
		}
		if v.Live != "" {
			w.Header().Set("X-Live", "1")
		}
		h.render(w, http.StatusOK, name, tmpl, v)
	}
}

func (h *Handler) render(w http.ResponseWriter, code int, page, tmpl string, v view) {
	pages, err := h.templates()
	if err != nil {
		h.log.Error("ui: templates", "error", err.Error())
		writeJSONError(w, http.StatusInternalServerError, "the dashboard's page templates do not parse ("+err.Error()+"): this build is broken (the API and the CLI still work); report it with this message")
		return
	}
	var buf bytes.Buffer
	if err := pages[page].ExecuteTemplate(&buf, tmpl, v); err != nil {
		h.log.Error("ui: render", "page", page, "error", err.Error())
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// errorData is the error page's data.
type errorData struct {
	Status  int
	Message string
	Next    string
}

// fail renders err as an error page with its status and the next step, or
// as a JSON error when the client does not ask for HTML (scripts, curl).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, a access, err error) {
	code := pipeline.ErrorStatus(err)
	if code >= 500 {
		h.log.ErrorContext(r.Context(), "ui: request failed", "path", r.URL.Path, "error", err.Error())
	}
	next := ""
	switch code {
	case http.StatusUnauthorized:
		next = "Open the dashboard through `pipeline ui --url SERVICE_URL`, which adds your identity token to each request."
		if h.cfg.BehindIAP {
			next = "Open the dashboard at its Identity-Aware Proxy address: requests that do not come through IAP are refused."
		}
	case http.StatusForbidden:
		next = "Ask for your email to be added to ALLOWED_VIEWERS (read) or ALLOWED_OPERATORS (read and act)."
	case http.StatusNotFound:
		next = "Go back to the grid at /ui/."
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		writeJSON(w, code, map[string]any{"error": err.Error(), "status": code, "next": next})
		return
	}
	h.render(w, code, "error", "layout", view{Title: http.StatusText(code), Access: a, Backend: h.cfg.Backend, Now: h.cfg.Now(),
		Data: errorData{Status: code, Message: err.Error(), Next: next}})
}

// writeJSONError answers a JSON error like the API's.
func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": msg, "status": code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
