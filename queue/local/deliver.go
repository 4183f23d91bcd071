package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// Request headers of a delivery, as Cloud Tasks sends them.
const (
	HeaderQueueName      = "X-CloudTasks-QueueName"
	HeaderTaskName       = "X-CloudTasks-TaskName"
	HeaderRetryCount     = "X-CloudTasks-TaskRetryCount"
	HeaderExecutionCount = "X-CloudTasks-TaskExecutionCount"
	HeaderETA            = "X-CloudTasks-TaskETA"
	userAgent            = "Google-Cloud-Tasks"
)

// The same names as http.CanonicalHeaderKey spells them (as they go on the
// wire and as an http.Header holds them).
const (
	canonicalQueueName      = "X-Cloudtasks-Queuename"
	canonicalTaskName       = "X-Cloudtasks-Taskname"
	canonicalRetryCount     = "X-Cloudtasks-Taskretrycount"
	canonicalExecutionCount = "X-Cloudtasks-Taskexecutioncount"
	canonicalETA            = "X-Cloudtasks-Tasketa"
)

// outcome is the result of one delivery.
type outcome struct {
	status     int           // HTTP status, or 0 when there was no response
	retryAfter time.Duration // from a 429 or 503 answer
	err        error         // nil when the handler answered 2xx
}

// deliver makes one delivery of r and records its result. stopping is done
// once the queue is shutting down.
func (q *Queue) deliver(ctx, stopping context.Context, r *record) {
	o := q.attempt(ctx, r)
	if q.settle(r) {
		// The handler committed the task's deletion with its step's
		// transition: whatever the answer, there is nothing left to do.
		return
	}
	now := time.Now()
	switch {
	case o.err == nil:
		q.finish(r, now)
	case ctx.Err() != nil, stopping.Err() != nil && o.status == http.StatusServiceUnavailable:
		// Shutdown cancelled the delivery, or the service answered 503
		// while shutting down (a step body it interrupted and released):
		// it does not count, and the task stays pending in the database
		// and in memory.
		q.requeue(r)
	default:
		q.fail(r, o, now)
	}
}

// finish forgets a delivered task. Its deletion is committed with the next
// Enqueue (in a chain, the successor's) or by the flusher: a crash before
// that only means one more delivery, which at-least-once allows.
func (q *Queue) finish(r *record, now time.Time) {
	q.mu.Lock()
	q.inflight--
	q.done = append(q.done, finished{name: r.Name, runID: r.Payload.RunID, at: now})
	q.mu.Unlock()
	select {
	case q.flush <- struct{}{}:
	default:
	}
}

func (q *Queue) requeue(r *record) {
	q.mu.Lock()
	q.inflight--
	q.tasks.push(r)
	q.mu.Unlock()
	q.poke()
}

func (q *Queue) fail(r *record, o outcome, now time.Time) {
	r.Attempts++
	if o.status != 0 {
		r.Responses++
	}
	r.LastError = o.err.Error()
	attrs := []any{"queue", q.cfg.QueueName, "task", r.Name, "run_id", r.Payload.RunID, "step", r.Payload.Step,
		"attempts", r.Attempts, "status", o.status, "error", o.err}
	if r.Attempts >= q.cfg.MaxAttempts {
		r.Dead = now
		err := q.commit(func(tx *bbolt.Tx) error { return buryTask(tx, r, q.cfg.DedupWindow, &q.sweep) })
		if err != nil {
			q.log.Error("local queue: task out of attempts and NOT dead-lettered; it stays pending", append(attrs, "db_error", err)...)
			r.Dead = time.Time{}
			r.ETA = now.Add(q.cfg.MaxBackoff)
			q.requeue(r)
			return
		}
		q.log.Error("local queue: task out of attempts: moved to the dead-letter bucket", attrs...)
		q.mu.Lock()
		q.inflight--
		q.mu.Unlock()
		return
	}
	r.ETA = now.Add(max(backoff(q.cfg.MinBackoff, q.cfg.MaxBackoff, r.Attempts), min(o.retryAfter, MaxRetryAfter)))
	q.log.Warn("local queue: delivery failed; will retry", append(attrs, "retry_in", r.ETA.Sub(now))...)
	if err := q.commit(func(tx *bbolt.Tx) error { return putTask(tx, r) }); err != nil {
		q.log.Error("local queue: retry state not saved", "task", r.Name, "error", err)
	}
	q.requeue(r)
}

// backoff is the wait after the n-th failed delivery: lo doubled n-1 times,
// at most hi.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// attempt POSTs r to the service.
func (q *Queue) attempt(ctx context.Context, r *record) outcome {
	ctx, cancel := context.WithTimeout(ctx, r.Deadline)
	defer cancel()
	q.mu.Lock()
	base := q.baseURL
	q.mu.Unlock()
	url := base + r.Payload.Path()
	body, err := json.Marshal(r.Payload)
	if err != nil {
		return outcome{err: fmt.Errorf("encode payload: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return outcome{err: fmt.Errorf("request %s: %w", url, err)}
	}
	// The header map is filled under canonical keys directly (Header.Set
	// canonicalises, allocating a new key for every X-CloudTasks-* name),
	// with one backing array for the values.
	vals := make([]string, 0, 8)
	h := make(http.Header, 8)
	for _, kv := range [...][2]string{
		{"Content-Type", "application/json"},
		{"User-Agent", userAgent},
		{canonicalQueueName, q.cfg.QueueName},
		{canonicalTaskName, r.Name},
		{canonicalRetryCount, strconv.Itoa(r.Attempts)},
		{canonicalExecutionCount, strconv.Itoa(r.Responses)},
		{canonicalETA, formatETA(r.ETA)},
	} {
		vals = append(vals, kv[1])
		h[kv[0]] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	req.Header = h
	if q.cfg.Token != nil {
		aud := q.cfg.Audience
		if aud == "" {
			aud = base
		}
		tok, err := q.cfg.Token(ctx, aud)
		if err != nil {
			return outcome{err: fmt.Errorf("token for %s: %w", aud, err)}
		}
		h.Set("Authorization", "Bearer "+tok)
	}
	resp, err := q.cfg.Client.Do(req)
	if err != nil {
		return outcome{err: fmt.Errorf("post %s: %w", url, err)}
	}
	defer resp.Body.Close()
	// What is left of the answer is read, so that the connection can be
	// reused (deferred after Close: it runs first).
	defer func() { _, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) }()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return outcome{status: resp.StatusCode}
	}
	// Only a failure's answer is kept (its start, for the error).
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	o := outcome{
		status: resp.StatusCode,
		err:    fmt.Errorf("post %s: %s: %s", url, resp.Status, strings.TrimSpace(string(snippet))),
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		o.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return o
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(min(max(s, 0), int(MaxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// formatETA writes t as Unix seconds with a microsecond fraction.
func formatETA(t time.Time) string {
	us := t.UnixMicro()
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}
