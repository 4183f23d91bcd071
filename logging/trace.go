package logging

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Trace is the trace context of the request being served.
type Trace struct {
	TraceID string // 32 lower-case hex digits
	SpanID  string // 16 hex digits, or ""
	Sampled bool
}

type traceKey struct{}

// ContextWithTrace returns ctx carrying t; log records made with it are tied
// to the trace.
func ContextWithTrace(ctx context.Context, t Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// TraceFromContext returns the trace carried by ctx, if any.
func TraceFromContext(ctx context.Context) (Trace, bool) {
	if ctx == nil {
		return Trace{}, false
	}
	t, ok := ctx.Value(traceKey{}).(Trace)
	return t, ok
}

// WithTrace returns ctx carrying the trace context of r, read from the W3C
// traceparent header or else from X-Cloud-Trace-Context; ctx is returned
// unchanged when neither holds a valid trace.
func WithTrace(ctx context.Context, r *http.Request) context.Context {
	if t, ok := ParseTrace(r.Header); ok {
		return ContextWithTrace(ctx, t)
	}
	return ctx
}

// ParseTrace reads the trace context from request headers: traceparent
// ("00-TRACE_ID-SPAN_ID-FLAGS") first, then X-Cloud-Trace-Context
// ("TRACE_ID/SPAN_ID;o=1", whose span id is decimal).
func ParseTrace(h http.Header) (Trace, bool) {
	// An absent header is skipped, not parsed into an error: most requests
	// (every local queue delivery) carry neither.
	if v := h.Get("traceparent"); v != "" {
		if t, err := parseTraceparent(v); err == nil {
			return t, true
		}
	}
	if v := h.Get("X-Cloud-Trace-Context"); v != "" {
		if t, err := parseCloudTrace(v); err == nil {
			return t, true
		}
	}
	return Trace{}, false
}

// parseTraceparent parses a W3C trace context header.
func parseTraceparent(v string) (Trace, error) {
	parts := strings.Split(strings.TrimSpace(v), "-")
	if len(parts) < 4 {
		return Trace{}, fmt.Errorf("traceparent %q: want 4 fields", v)
	}
	version, traceID, spanID, flags := parts[0], parts[1], parts[2], parts[3]
	if !isHex(version, 2) || version == "ff" || (version == "00" && len(parts) != 4) {
		return Trace{}, fmt.Errorf("traceparent %q: bad version", v)
	}
	if !isHex(traceID, 32) || isZeros(traceID) {
		return Trace{}, fmt.Errorf("traceparent %q: bad trace id", v)
	}
	if !isHex(spanID, 16) || isZeros(spanID) {
		return Trace{}, fmt.Errorf("traceparent %q: bad parent id", v)
	}
	if !isHex(flags, 2) {
		return Trace{}, fmt.Errorf("traceparent %q: bad flags", v)
	}
	f, _ := strconv.ParseUint(flags, 16, 8)
	return Trace{TraceID: strings.ToLower(traceID), SpanID: strings.ToLower(spanID), Sampled: f&1 == 1}, nil
}

// parseCloudTrace parses X-Cloud-Trace-Context: TRACE_ID[/SPAN_ID][;o=OPTIONS].
func parseCloudTrace(v string) (Trace, error) {
	v = strings.TrimSpace(v)
	rest, opts, _ := strings.Cut(v, ";")
	traceID, spanID, hasSpan := strings.Cut(rest, "/")
	if !isHex(traceID, 32) || isZeros(traceID) {
		return Trace{}, fmt.Errorf("X-Cloud-Trace-Context %q: bad trace id", v)
	}
	t := Trace{TraceID: strings.ToLower(traceID)}
	if hasSpan && spanID != "" {
		n, err := strconv.ParseUint(spanID, 10, 64)
		if err != nil {
			return Trace{}, fmt.Errorf("X-Cloud-Trace-Context %q: span id is not a decimal number", v)
		}
		if n != 0 {
			t.SpanID = fmt.Sprintf("%016x", n)
		}
	}
	if o, ok := strings.CutPrefix(strings.TrimSpace(opts), "o="); ok {
		if n, err := strconv.ParseUint(o, 10, 8); err == nil {
			t.Sampled = n&1 == 1
		}
	}
	return t, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func isZeros(s string) bool { return strings.Trim(s, "0") == "" }
