package logging_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/logging"
)

// lines decodes every line of buf as a JSON object.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestSeverityMessageTime(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelDebug, "")
	before := time.Now()
	log.Debug("d")
	log.Info("i", "n", 3)
	log.Warn("w")
	log.Error("e", "err", errors.New("boom"))
	log.Log(context.Background(), slog.LevelError+4, "worse")
	got := lines(t, &buf)
	want := []struct{ sev, msg string }{{"DEBUG", "d"}, {"INFO", "i"}, {"WARNING", "w"}, {"ERROR", "e"}, {"ERROR", "worse"}}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i, w := range want {
		m := got[i]
		if m["severity"] != w.sev || m["message"] != w.msg {
			t.Errorf("line %d: severity %v message %v, want %s %s", i, m["severity"], m["message"], w.sev, w.msg)
		}
		for _, k := range []string{"level", "msg", "logging.googleapis.com/trace"} {
			if _, ok := m[k]; ok {
				t.Errorf("line %d has key %q: %v", i, k, m)
			}
		}
		ts, err := time.Parse(time.RFC3339Nano, m["time"].(string))
		if err != nil || ts.Before(before.Add(-time.Second)) {
			t.Errorf("line %d: time %v: %v", i, m["time"], err)
		}
	}
	if got[1]["n"] != 3.0 || got[3]["err"] != "boom" {
		t.Errorf("attrs lost: %v %v", got[1], got[3])
	}
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelWarn, "p")
	log.Info("hidden")
	log.Warn("shown")
	got := lines(t, &buf)
	if len(got) != 1 || got[0]["message"] != "shown" {
		t.Errorf("got %v", got)
	}
}

func TestTraceFromHeaders(t *testing.T) {
	const traceID = "105445aa7843bc8bf206b12000100000"
	for _, tc := range []struct {
		name, header, value string
		project             string
		wantTrace, wantSpan string
		wantSampled         bool
	}{
		{"cloud", "X-Cloud-Trace-Context", traceID + "/1;o=1", "my-proj",
			"projects/my-proj/traces/" + traceID, "0000000000000001", true},
		{"cloud decimal span", "X-Cloud-Trace-Context", traceID + "/18446744073709551615;o=0", "",
			traceID, "ffffffffffffffff", false},
		{"cloud trace only", "X-Cloud-Trace-Context", traceID, "p",
			"projects/p/traces/" + traceID, "", false},
		{"w3c sampled", "traceparent", "00-" + traceID + "-00f067aa0ba902b7-01", "my-proj",
			"projects/my-proj/traces/" + traceID, "00f067aa0ba902b7", true},
		{"w3c unsampled no project", "traceparent", "00-" + strings.ToUpper(traceID) + "-00f067aa0ba902b7-00", "",
			traceID, "00f067aa0ba902b7", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := logging.New(&buf, slog.LevelInfo, tc.project)
			r := httptest.NewRequest("POST", "/pipeline/start", nil)
			r.Header.Set(tc.header, tc.value)
			ctx := logging.WithTrace(r.Context(), r)
			log.WithGroup("req").InfoContext(ctx, "hello", "path", r.URL.Path)
			m := lines(t, &buf)[0]
			if m["logging.googleapis.com/trace"] != tc.wantTrace {
				t.Errorf("trace = %v, want %s", m["logging.googleapis.com/trace"], tc.wantTrace)
			}
			span, hasSpan := m["logging.googleapis.com/spanId"]
			if tc.wantSpan == "" && hasSpan || tc.wantSpan != "" && span != tc.wantSpan {
				t.Errorf("spanId = %v, want %q", span, tc.wantSpan)
			}
			if m["logging.googleapis.com/trace_sampled"] != tc.wantSampled {
				t.Errorf("trace_sampled = %v, want %v", m["logging.googleapis.com/trace_sampled"], tc.wantSampled)
			}
			if req, _ := m["req"].(map[string]any); req["path"] != "/pipeline/start" {
				t.Errorf("group req = %v", m["req"])
			}
		})
	}
}

func TestTraceparentWinsAndBadHeadersAreIgnored(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	r.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1")
	if tr, _ := logging.TraceFromContext(logging.WithTrace(context.Background(), r)); tr.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace = %+v, want the traceparent's", tr)
	}
	for _, h := range []map[string]string{
		{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
		{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
		{"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"traceparent": "garbage"},
		{"X-Cloud-Trace-Context": "nothex/1;o=1"},
		{"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/abc;o=1"},
		{},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		if tr, ok := logging.TraceFromContext(logging.WithTrace(context.Background(), r)); ok {
			t.Errorf("headers %v gave trace %+v, want none", h, tr)
		}
	}
	// A bad traceparent falls back to a good X-Cloud-Trace-Context.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("traceparent", "garbage")
	r.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1")
	if tr, _ := logging.TraceFromContext(logging.WithTrace(context.Background(), r)); tr.TraceID != "105445aa7843bc8bf206b12000100000" {
		t.Errorf("trace = %+v, want the X-Cloud-Trace-Context one", tr)
	}
}

func TestGroupsAndAttrsNest(t *testing.T) {
	var buf bytes.Buffer
	ctx := logging.ContextWithTrace(context.Background(), logging.Trace{TraceID: "abc", SpanID: "01", Sampled: true})
	log := logging.New(&buf, slog.LevelInfo, "p").
		With("run", "daily@2026-03-14").
		WithGroup("step").With("name", "extract").
		WithGroup("empty")
	log.InfoContext(ctx, "done", "rows", 200, slog.Group("out", "file", "orders.csv"))
	log.InfoContext(ctx, "no attrs") // the empty group is dropped, as slog does
	got := lines(t, &buf)
	want := map[string]any{
		"run": "daily@2026-03-14",
		"step": map[string]any{
			"name":  "extract",
			"empty": map[string]any{"rows": 200.0, "out": map[string]any{"file": "orders.csv"}},
		},
		"logging.googleapis.com/trace":         "projects/p/traces/abc",
		"logging.googleapis.com/spanId":        "01",
		"logging.googleapis.com/trace_sampled": true,
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[0][k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[0][k], v)
		}
	}
	if s := got[1]["step"].(map[string]any); s["name"] != "extract" || s["empty"] != nil {
		t.Errorf("second line step = %v", s)
	}
	// A user attr named level is kept as is.
	buf.Reset()
	logging.New(&buf, slog.LevelInfo, "").Info("x", "level", 3)
	if m := lines(t, &buf)[0]; m["level"] != 3.0 || m["severity"] != "INFO" {
		t.Errorf("line = %v", m)
	}
}

func TestConcurrentUse(t *testing.T) {
	var buf syncBuffer
	log := logging.New(&buf, slog.LevelInfo, "p").With("a", 1)
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			l := log.WithGroup("g").With("i", i)
			for range 50 {
				l.Info("m")
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := len(lines(t, &buf.b)); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
}
