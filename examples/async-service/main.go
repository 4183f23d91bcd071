// Command async-service is a small asynchronous export API to try the
// `http` step kind with `async: true` locally: a start answers 202 Accepted
// with a Location to check, and the export is ready after the seconds it
// was asked to take.
//
//	go run ./examples/async-service                 # listens on 127.0.0.1:8090
//	go run ./cmd/pipeline run -f pipelines/examples/async.yaml
//
// It keeps its exports in memory: a restart forgets them (a waiting step's
// check then gets 404 and fails, as it would against a real service that
// lost the job).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// serve answers the export API on addr until ctx ends.
func serve(ctx context.Context, addr string, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (another program there? pass -addr HOST:PORT)", addr, err)
	}
	srv := &http.Server{Handler: logged(newService(time.Now), out), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "async export service on http://%s (POST /exports?date=D&seconds=N, GET /exports/ID); Ctrl-C stops it\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// logged prints one line per request.
func logged(h http.Handler, out io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		fmt.Fprintf(out, "%s %s %s -> %d\n", time.Now().Format("15:04:05"), r.Method, r.URL.RequestURI(), rec.code)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
