// Package logging provides a log/slog handler that writes the structured
// JSON lines Cloud Logging understands (severity, message, time, trace and
// span), so that Cloud Run's logs group under their request.
package logging

import (
	"context"
	"io"
	"log/slog"
)

// Cloud Logging's special JSON fields.
const (
	KeySeverity     = "severity"
	KeyMessage      = "message"
	KeyTime         = "time"
	KeyTrace        = "logging.googleapis.com/trace"
	KeySpanID       = "logging.googleapis.com/spanId"
	KeyTraceSampled = "logging.googleapis.com/trace_sampled"
)

// New returns a logger writing one JSON object per line to w for records at
// level and above. projectID (may be "") qualifies trace ids as
// projects/PROJECT/traces/TRACE_ID, as Cloud Logging wants.
func New(w io.Writer, level slog.Level, projectID string) *slog.Logger {
	return slog.New(NewHandler(w, level, projectID))
}

// NewHandler returns the handler behind New; level may be a *slog.LevelVar.
func NewHandler(w io.Writer, level slog.Leveler, projectID string) slog.Handler {
	return &Handler{
		base: slog.NewJSONHandler(w, &slog.HandlerOptions{
			Level:       level,
			ReplaceAttr: replaceAttr,
		}),
		projectID: projectID,
	}
}

// Handler adds the trace of the record's context as top-level fields. From
// the first WithGroup on it keeps the attrs and groups itself and nests them
// at Handle time, because the trace fields must stay at the top level even
// when a group is open.
type Handler struct {
	base      slog.Handler // the JSON handler with the top-level attrs; never grouped
	projectID string
	goas      []groupOrAttrs
}

var _ slog.Handler = (*Handler)(nil)

// groupOrAttrs is one WithGroup (group != "") or WithAttrs call.
type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

// Enabled reports whether the level is logged.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.base.Enabled(ctx, l) }

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	if len(h.goas) == 0 {
		// No group open: let the JSON handler preformat them once.
		c := *h
		c.base = h.base.WithAttrs(attrs)
		return &c
	}
	return h.with(groupOrAttrs{attrs: attrs})
}

// WithGroup returns a handler that nests later attrs under name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(groupOrAttrs{group: name})
}

func (h *Handler) with(g groupOrAttrs) *Handler {
	c := *h
	c.goas = append(h.goas[:len(h.goas):len(h.goas)], g)
	return &c
}

// Handle writes r, with the trace of ctx and the handler's attrs and groups.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if t, ok := TraceFromContext(ctx); ok {
		trace := t.TraceID
		if h.projectID != "" {
			trace = "projects/" + h.projectID + "/traces/" + t.TraceID
		}
		out.AddAttrs(slog.String(KeyTrace, trace))
		if t.SpanID != "" {
			out.AddAttrs(slog.String(KeySpanID, t.SpanID))
		}
		out.AddAttrs(slog.Bool(KeyTraceSampled, t.Sampled))
	}
	// Build from the innermost group outwards: the record's own attrs sit in
	// the last group opened.
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	for i := len(h.goas) - 1; i >= 0; i-- {
		g := h.goas[i]
		if g.group == "" {
			attrs = append(g.attrs[:len(g.attrs):len(g.attrs)], attrs...)
			continue
		}
		if len(attrs) == 0 {
			continue // slog drops empty groups
		}
		attrs = []slog.Attr{{Key: g.group, Value: slog.GroupValue(attrs...)}}
	}
	out.AddAttrs(attrs...)
	return h.base.Handle(ctx, out)
}

// replaceAttr renames slog's built-in keys to Cloud Logging's.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok { // not a user attr named "level"
			return slog.String(KeySeverity, Severity(l))
		}
	case slog.MessageKey:
		a.Key = KeyMessage
	}
	return a
}

// Severity maps a slog level to a Cloud Logging severity.
func Severity(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	default:
		return "ERROR"
	}
}
