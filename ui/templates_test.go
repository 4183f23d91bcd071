package ui

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// TestTemplatesParse parses every page template as the dashboard will on its
// first page, so that a broken template fails CI rather than a user's first
// visit (New no longer parses them).
func TestTemplatesParse(t *testing.T) {
	pages, err := parsePages(files)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, p := range pageNames {
		tp := pages[p]
		if tp == nil {
			t.Errorf("page %s: not parsed", p)
			continue
		}
		for _, name := range []string{"layout", "main"} {
			if tp.Lookup(name) == nil {
				t.Errorf("page %s: no template %q", p, name)
			}
		}
	}
}

// TestTemplateParseErrorIs500: a template that does not parse answers every
// page with a 500 naming the template and the error, every time, and the
// handler keeps serving.
func TestTemplateParseErrorIs500(t *testing.T) {
	broken := fstest.MapFS{
		"templates/layout.html": {Data: []byte(`{{define "layout"}}{{template "main" .}}{{end}}`)},
	}
	for _, p := range pageNames {
		broken["templates/"+p+".html"] = &fstest.MapFile{Data: []byte(`{{define "main"}}ok{{end}}`)}
	}
	broken["templates/run.html"] = &fstest.MapFile{Data: []byte(`{{define "main"}}{{if .Data}}unclosed{{end}}`)}
	h := &Handler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), tmplFS: broken}
	for range 2 {
		w := httptest.NewRecorder()
		h.render(w, http.StatusOK, "grid", "layout", view{})
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500; body %s", w.Code, w.Body)
		}
		var body struct {
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("body is not JSON: %v: %s", err, w.Body)
		}
		if body.Status != 500 || !strings.Contains(body.Error, "template run") || !strings.Contains(body.Error, "do not parse") {
			t.Errorf("error %+v: want the status, the template's name and what went wrong", body)
		}
	}
}
