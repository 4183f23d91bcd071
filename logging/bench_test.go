package logging_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/pipelinehq/pipeline/logging"
)

// BenchmarkHandler compares the Cloud Logging handler with the plain JSON
// handler it wraps, with a trace and a group.
func BenchmarkHandler(b *testing.B) {
	ctx := logging.ContextWithTrace(context.Background(), logging.Trace{TraceID: "105445aa7843bc8bf206b12000100000", SpanID: "0000000000000001", Sampled: true})
	for _, bc := range []struct {
		name string
		log  *slog.Logger
	}{
		{"cloud", logging.New(io.Discard, slog.LevelInfo, "proj")},
		{"plain-json", slog.New(slog.NewJSONHandler(io.Discard, nil))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := bc.log.With("run", "daily@2026-03-14").WithGroup("step")
			b.ReportAllocs()
			for b.Loop() {
				l.InfoContext(ctx, "step succeeded", "name", "extract", "attempt", 1)
			}
		})
	}
}
