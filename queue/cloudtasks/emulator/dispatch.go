package emulator

import (
	"bytes"
	"container/heap"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// maxRetryAfter caps how long a Retry-After header may hold a task back.
	maxRetryAfter = time.Hour
	// maxDrain is how much of a response body is read so that the
	// connection can be reused.
	maxDrain = 64 << 10
)

// attempt is what one delivery needs, copied under e.mu so that the HTTP
// exchange runs without it.
type attempt struct {
	t          *task
	queueID    string
	taskID     string
	req        *cloudtaskspb.HttpRequest // never modified after CreateTask
	deadline   time.Duration
	eta        time.Time
	retries    int32 // earlier dispatches
	executions int32 // earlier responses
	previous   int   // HTTP status of the previous response, 0 if none
}

// schedule starts attempts as tasks fall due and slots free up. It sleeps on
// a timer set to the earliest due task, or until nudged.
func (e *Emulator) schedule() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		wait := time.Duration(-1)
		e.mu.Lock()
		now := time.Now()
		for len(e.due) > 0 && e.inflight < e.cfg.MaxConcurrent {
			if d := e.due[0].due.Sub(now); d > 0 {
				wait = d
				break
			}
			a := e.beginLocked(heap.Pop(&e.due).(*task), now)
			e.wg.Go(func() { e.dispatch(a) })
		}
		e.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-e.ctx.Done():
			timer.Stop()
			return
		case <-e.wake:
		case <-timer.C:
		}
	}
}

// beginLocked records the start of an attempt on t. e.mu must be held.
func (e *Emulator) beginLocked(t *task, now time.Time) attempt {
	e.inflight++
	pb := t.pb
	a := attempt{
		t:          t,
		queueID:    lastSegment(t.queue),
		taskID:     lastSegment(pb.Name),
		req:        pb.GetHttpRequest(),
		deadline:   pb.GetDispatchDeadline().AsDuration(),
		eta:        pb.GetScheduleTime().AsTime(),
		retries:    pb.DispatchCount,
		executions: pb.ResponseCount,
		previous:   t.status,
	}
	pb.DispatchCount++
	pb.LastAttempt = &cloudtaskspb.Attempt{ScheduleTime: pb.ScheduleTime, DispatchTime: timestamppb.New(now)}
	if pb.FirstAttempt == nil {
		pb.FirstAttempt = &cloudtaskspb.Attempt{DispatchTime: pb.LastAttempt.DispatchTime}
	}
	return a
}

// dispatch delivers one attempt and records its outcome.
func (e *Emulator) dispatch(a attempt) {
	code, wait, err := e.deliver(a)
	e.cfg.Logger.Debug("cloud tasks emulator: attempt", "queue", a.queueID, "task", a.taskID,
		"retry", a.retries, "status", code, "err", err)
	e.finish(a, code, wait)
}

// deliver makes the HTTP request of an attempt. It returns the response
// status (0 when there was no response) and the Retry-After of a 429 or 503.
func (e *Emulator) deliver(a attempt) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(e.ctx, a.deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, a.req.GetHttpMethod().String(), a.req.GetUrl(), bytes.NewReader(a.req.GetBody()))
	if err != nil {
		return 0, 0, err
	}
	for k, v := range a.req.GetHeaders() {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "Google-Cloud-Tasks")
	req.Header.Set("X-CloudTasks-QueueName", a.queueID)
	req.Header.Set("X-CloudTasks-TaskName", a.taskID)
	req.Header.Set("X-CloudTasks-TaskRetryCount", strconv.Itoa(int(a.retries)))
	req.Header.Set("X-CloudTasks-TaskExecutionCount", strconv.Itoa(int(a.executions)))
	req.Header.Set("X-CloudTasks-TaskETA", strconv.FormatFloat(float64(a.eta.UnixMicro())/1e6, 'f', 6, 64))
	if a.previous != 0 {
		req.Header.Set("X-CloudTasks-TaskPreviousResponse", strconv.Itoa(a.previous))
	}
	if oidc := a.req.GetOidcToken(); oidc != nil {
		aud := oidc.GetAudience()
		if aud == "" {
			aud = a.req.GetUrl()
		}
		tok, err := e.issuer.token(aud, oidc.GetServiceAccountEmail(), time.Now())
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	var wait time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return resp.StatusCode, wait, nil
}

// finish records the outcome of an attempt: a 2xx ends the task; anything
// else schedules a retry after backoff (at least wait) or, past MaxAttempts,
// drops the task.
func (e *Emulator) finish(a attempt, code int, wait time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inflight--
	defer e.signalLocked()
	if e.ctx.Err() != nil {
		return // closing: the attempt was cancelled, not answered
	}
	now := time.Now()
	t, pb := a.t, a.t.pb
	t.status = code
	e.stats.Dispatches++
	e.stats.ByStatus[code]++
	pb.LastAttempt.ResponseTime = timestamppb.New(now)
	if code != 0 {
		pb.ResponseCount++
		pb.LastAttempt.ResponseStatus = status.New(httpCode(code), http.StatusText(code)).Proto()
	} else {
		pb.LastAttempt.ResponseStatus = status.New(codes.Unavailable, "no response").Proto()
	}
	switch {
	case t.deleted:
		return
	case code >= 200 && code < 300:
		e.stats.Succeeded++
		e.retire(t, now)
		return
	case e.cfg.MaxAttempts > 0 && int(pb.DispatchCount) >= e.cfg.MaxAttempts:
		e.stats.Exhausted++
		e.cfg.Logger.Warn("cloud tasks emulator: task dropped after its last attempt",
			"task", pb.Name, "attempts", pb.DispatchCount, "status", code)
		e.retire(t, now)
		return
	}
	t.due = now.Add(max(e.backoff(int(pb.DispatchCount)), wait))
	pb.ScheduleTime = timestamppb.New(t.due)
	heap.Push(&e.due, t)
}

// backoff is the delay after the n-th failed attempt: MinBackoff doubled
// n-1 times (at most maxDoublings), capped at MaxBackoff.
func (e *Emulator) backoff(n int) time.Duration {
	d := e.cfg.MinBackoff << min(max(n-1, 0), maxDoublings)
	if d > e.cfg.MaxBackoff || d < e.cfg.MinBackoff {
		return e.cfg.MaxBackoff
	}
	return d
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(h); err == nil {
		d = time.Duration(s) * time.Second
	} else if at, err := http.ParseTime(h); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// httpCode maps an HTTP status to the gRPC code Cloud Tasks records for it.
func httpCode(s int) codes.Code {
	switch {
	case s >= 200 && s < 300:
		return codes.OK
	case s == http.StatusBadRequest:
		return codes.InvalidArgument
	case s == http.StatusUnauthorized:
		return codes.Unauthenticated
	case s == http.StatusForbidden:
		return codes.PermissionDenied
	case s == http.StatusNotFound:
		return codes.NotFound
	case s == http.StatusConflict:
		return codes.Aborted
	case s == http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case s == http.StatusNotImplemented:
		return codes.Unimplemented
	case s == http.StatusServiceUnavailable:
		return codes.Unavailable
	case s == http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case s >= 400 && s < 500:
		return codes.FailedPrecondition
	}
	return codes.Internal
}
