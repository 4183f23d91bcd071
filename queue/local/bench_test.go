package local

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkEnqueueToDelivery measures the time from calling Enqueue to the
// step handler receiving the task, with real fsyncs, for closed-loop clients
// that each enqueue a task and wait for its delivery before the next one. It
// reports p50/p99 latency and deliveries per second, with the default group
// commit and with bbolt's DB.Batch at two MaxBatchDelay settings.
func BenchmarkEnqueueToDelivery(b *testing.B) {
	for _, commit := range []string{"group", "batch200us", "batch500us"} {
		for _, clients := range []int{1, 50} {
			b.Run(fmt.Sprintf("commit=%s/clients=%d", commit, clients), func(b *testing.B) {
				benchEnqueueToDelivery(b, commit, clients)
			})
		}
	}
}

func benchEnqueueToDelivery(b *testing.B, commit string, clients int) {
	arrived := make([]chan time.Time, clients)
	for i := range arrived {
		arrived[i] = make(chan time.Time, 1)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		// Task names are c<client>-<seq>.
		id, _, _ := strings.Cut(strings.TrimPrefix(r.Header.Get(HeaderTaskName), "c"), "-")
		n, err := strconv.Atoi(id)
		if err != nil || n >= clients {
			http.Error(w, "bad task name", http.StatusBadRequest)
			return
		}
		arrived[n] <- at
	}))
	defer srv.Close()
	db := openDB(b, filepath.Join(b.TempDir(), "bench.db"))
	cfg := Config{BaseURL: srv.URL, Concurrency: max(16, clients), Logger: slog.New(slog.DiscardHandler)}
	switch commit {
	case "batch200us":
		db.MaxBatchDelay = 200 * time.Microsecond
		cfg.Commit = db.Batch
	case "batch500us":
		db.MaxBatchDelay = 500 * time.Microsecond
		cfg.Commit = db.Batch
	}
	q := newQueue(b, db, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	defer func() { cancel(); <-done }()

	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		per := b.N / clients
		if c < b.N%clients {
			per++
		}
		wg.Go(func() {
			for i := range per {
				t0 := time.Now()
				if err := q.Enqueue(ctx, task(fmt.Sprintf("c%d-%d", c, i), "s")); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], (<-arrived[c]).Sub(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50_us")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99_us")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
}
