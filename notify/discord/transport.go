package discord

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
)

// webhooksPath is where discordgo sends webhook requests (its fixed endpoint).
var webhooksPath = mustPath(discordgo.EndpointWebhooks)

func mustPath(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u.Path
}

// transport sends discordgo's webhook requests to the configured webhook URL
// (scheme, host and path as given, plus what follows the token, such as
// /messages/{id}). It feeds rate-limit information to the notifier's limiter
// and hides it from discordgo, whose limiter would sleep without a context.
type transport struct {
	base    http.RoundTripper
	hook    webhook
	limiter *limiter
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	prefix := webhooksPath + t.hook.id + "/" + t.hook.token
	if req.URL.Host != "discord.com" || !strings.HasPrefix(req.URL.Path, prefix) {
		return nil, fmt.Errorf("discord: refusing to send %s %s: only the configured webhook is used", req.Method, req.URL.Redacted())
	}
	u := *t.hook.url
	u.Path = t.hook.url.Path + strings.TrimPrefix(req.URL.Path, prefix)
	q := t.hook.url.Query()
	for k, vs := range req.URL.Query() {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	out := req.Clone(req.Context())
	out.URL = &u
	out.Host = ""
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	t.observe(resp)
	return resp, nil
}

// observe records rate limits from resp and strips them for discordgo. A 429
// whose body is not Discord's JSON gets one, so discordgo reports it as a
// RateLimitError either way.
func (t *transport) observe(resp *http.Response) {
	h := resp.Header
	if h.Get("X-RateLimit-Remaining") == "0" {
		if d, ok := seconds(h.Get("X-RateLimit-Reset-After")); ok {
			t.limiter.hold(d)
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		var tmr struct {
			RetryAfter *float64 `json:"retry_after"`
		}
		wait := time.Second
		if json.Unmarshal(body, &tmr) == nil && tmr.RetryAfter != nil {
			wait = time.Duration(*tmr.RetryAfter * float64(time.Second))
		} else {
			if d, ok := seconds(h.Get("Retry-After")); ok {
				wait = d
			}
			body = fmt.Appendf(nil, `{"message":"rate limited","retry_after":%g}`, wait.Seconds())
		}
		t.limiter.hold(wait)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
	}
	if resp.StatusCode >= 500 {
		// Unavailable with a Retry-After (seconds): no request before then.
		if d, ok := seconds(h.Get("Retry-After")); ok {
			t.limiter.hold(min(d, maxRetryAfter))
		}
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-ratelimit-") {
			delete(h, k)
		}
	}
}

// maxRetryAfter caps a 5xx's Retry-After, so that a bogus one cannot silence
// notifications for long.
const maxRetryAfter = 10 * time.Minute

func seconds(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}
