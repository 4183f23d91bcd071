package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
)

// limits measures this machine's floor for the workload: an fdatasync of a
// small write, a bbolt commit of one small record (what one durable state
// change costs in local mode) and a loopback HTTP round trip (what one queue
// hop costs). Each is the median of n.
func limits(dir string, n int) (string, error) {
	f, err := os.Create(filepath.Join(dir, "fsync"))
	if err != nil {
		return "", fmt.Errorf("limits: %w", err)
	}
	defer f.Close()
	fsync, err := median(n, func() error {
		if _, err := f.Write(make([]byte, 512)); err != nil {
			return err
		}
		return f.Sync() // fsync(2): the file grows, so fdatasync would flush the size too
	})
	if err != nil {
		return "", fmt.Errorf("limits: fsync: %w", err)
	}
	db, err := bbolt.Open(filepath.Join(dir, "bolt.db"), 0o600, &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return "", fmt.Errorf("limits: bbolt: %w", err)
	}
	defer db.Close()
	i := 0
	commit, err := median(n, func() error {
		i++
		return db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(strconv.Itoa(i)), make([]byte, 300))
		})
	})
	if err != nil {
		return "", fmt.Errorf("limits: bbolt commit: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("limits: listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte("{}"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"
	client := &http.Client{Timeout: 5 * time.Second}
	rtt, err := median(n, func() error {
		resp, err := client.Post(url, "application/json", nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	})
	if err != nil {
		return "", fmt.Errorf("limits: loopback HTTP: %w", err)
	}
	return fmt.Sprintf("%s fsync_ms=%.3f bbolt_commit_ms=%.3f loopback_http_ms=%.3f", "machine", ms(fsync), ms(commit), ms(rtt)), nil
}

func median(n int, f func() error) (time.Duration, error) {
	d := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		d = append(d, time.Since(t0))
	}
	return time.Duration(quantileMS(d, 0.5) * float64(time.Millisecond)), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
