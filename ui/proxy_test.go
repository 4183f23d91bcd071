package ui_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pipelinehq/pipeline/ui"
)

// The proxy adds the token to each request, presents the browser's own
// requests as the service's origin, and refuses cross-site ones itself.
func TestProxyAddsTheTokenAndRefusesCrossSite(t *testing.T) {
	type seen struct{ method, path, auth, origin, host string }
	var mu sync.Mutex
	var got []seen
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Origin"), r.Host})
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer svc.Close()
	target, _ := url.Parse(svc.URL)
	p, err := ui.NewProxy(ui.ProxyConfig{Target: target, Token: func(context.Context) (string, error) { return "tok-1", nil }, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	px := httptest.NewServer(p)
	defer px.Close()

	send := func(method, path string, header map[string]string) (int, string) {
		req, _ := http.NewRequest(method, px.URL+path, strings.NewReader("{}"))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := send("GET", "/ui/", map[string]string{"Authorization": "Bearer someone-else"}); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	if code, _ := send("POST", "/ui/api/runs/a@b/resume", map[string]string{"Origin": px.URL, "Sec-Fetch-Site": "same-origin"}); code != 200 {
		t.Fatalf("same-origin POST: %d", code)
	}
	code, body := send("POST", "/pipeline/runs/a@b/cancel", map[string]string{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"})
	if code != http.StatusForbidden || !strings.Contains(body, "refused by the local proxy") {
		t.Fatalf("cross-site POST: %d %s", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("service saw %d requests, want 2 (the cross-site one stops at the proxy): %+v", len(got), got)
	}
	for _, s := range got {
		if s.auth != "Bearer tok-1" || s.host != target.Host {
			t.Errorf("service saw %+v; want the proxy's token and its own host", s)
		}
	}
	if got[1].origin != svc.URL {
		t.Errorf("forwarded Origin %q, want the service's %q", got[1].origin, svc.URL)
	}
}

func TestProxyTokenErrorIsClear(t *testing.T) {
	target, _ := url.Parse("http://127.0.0.1:9")
	p, err := ui.NewProxy(ui.ProxyConfig{Target: target, Logger: quiet(),
		Token: func(context.Context) (string, error) { return "", errors.New("no credentials found") }})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1:8081/ui/", nil))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "no credentials found") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if _, err := ui.NewProxy(ui.ProxyConfig{Target: &url.URL{Scheme: "ftp", Host: "x"}}); err == nil {
		t.Error("an ftp target was accepted")
	}
}
