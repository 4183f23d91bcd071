package steps_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

func testInput() steps.Input {
	return steps.Input{
		RunID:       "daily@2026-03-14",
		Pipeline:    "daily",
		Step:        "notify",
		Date:        time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC),
		Params:      map[string]string{"region": "eu west", "token": "s3cret"},
		Attempt:     2,
		MaxAttempts: 3,
	}
}

func newHTTP(t *testing.T, settings map[string]any) steps.Step {
	t.Helper()
	s, err := steps.NewHTTP(settings)
	if err != nil {
		t.Fatalf("NewHTTP(%v): %v", settings, err)
	}
	return s
}

func TestHTTPSuccessExpandsTemplatesAndKeepsJSONOutput(t *testing.T) {
	type seen struct {
		method, path, query, auth, ctype, body string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Token"), r.Header.Get("Content-Type"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{ "accepted": true,  "id": 7 }`)
	}))
	defer srv.Close()

	step := newHTTP(t, map[string]any{
		"url":     srv.URL + "/runs/{{.Pipeline}}/{{.Date}}?region={{urlquery .Params.region}}&attempt={{.Attempt}}",
		"method":  "put",
		"headers": map[string]any{"x-token": "Bearer {{.Params.token}}"},
		"body":    `{"run":"{{.RunID}}","step":"{{.Step}}"}`,
	})
	out, err := step.Run(context.Background(), testInput())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if string(out) != `{"accepted":true,"id":7}` {
		t.Errorf("output = %s, want the compacted JSON body", out)
	}
	s := <-got
	want := seen{
		method: "PUT",
		path:   "/runs/daily/2026-03-14",
		query:  "region=eu+west&attempt=2",
		auth:   "Bearer s3cret",
		ctype:  "application/json",
		body:   `{"run":"daily@2026-03-14","step":"notify"}`,
	}
	if s != want {
		t.Errorf("server saw %+v\nwant %+v", s, want)
	}
}

func TestHTTPDefaultsToPOSTWithoutBody(t *testing.T) {
	var method atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method.Store(r.Method)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	out, err := newHTTP(t, map[string]any{"url": srv.URL}).Run(context.Background(), testInput())
	if err != nil {
		t.Fatal(err)
	}
	if method.Load() != "POST" {
		t.Errorf("method = %v, want POST", method.Load())
	}
	if string(out) != `{"status":202}` {
		t.Errorf("output = %s, want {\"status\":202}", out)
	}
}

func TestHTTPNonJSONOrEmptyBodyGivesStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		want string
	}{
		{200, "all good", `{"status":200}`},
		{200, "", `{"status":200}`},
		{201, "   \n", `{"status":201}`},
		{204, "", `{"status":204}`},
		{200, `{"broken":`, `{"status":200}`},
		{200, `[1, 2]`, `[1,2]`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
			io.WriteString(w, tc.body)
		}))
		out, err := newHTTP(t, map[string]any{"url": srv.URL, "method": "GET"}).Run(context.Background(), testInput())
		srv.Close()
		if err != nil {
			t.Errorf("%d %q: %v", tc.code, tc.body, err)
			continue
		}
		if string(out) != tc.want {
			t.Errorf("%d %q: output = %s, want %s", tc.code, tc.body, out, tc.want)
		}
	}
}

// jsonOfSize returns a JSON object of exactly n bytes.
func jsonOfSize(n int) []byte {
	const head, tail = `{"pad":"`, `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

func TestHTTPOutputLimit(t *testing.T) {
	for _, tc := range []struct {
		size int
		want string
	}{
		{steps.MaxHTTPOutput, ""}, // kept as is
		{steps.MaxHTTPOutput + 1, `{"status":200,"truncated":true}`},
	} {
		body := jsonOfSize(tc.size)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
		out, err := newHTTP(t, map[string]any{"url": srv.URL}).Run(context.Background(), testInput())
		srv.Close()
		if err != nil {
			t.Fatalf("size %d: %v", tc.size, err)
		}
		want := tc.want
		if want == "" {
			want = string(body)
		}
		if string(out) != want {
			t.Errorf("size %d: output is %d bytes starting %.40q, want %.40q", tc.size, len(out), out, want)
		}
	}
}

func TestHTTPDoesNotReadAnUnboundedBody(t *testing.T) {
	const offered = 256 << 20
	written := make(chan int64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		var n int64
		for n < offered {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		written <- n
	}))
	defer srv.Close()
	out, err := newHTTP(t, map[string]any{"url": srv.URL}).Run(context.Background(), testInput())
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"status":200,"truncated":true}` {
		t.Errorf("output = %s", out)
	}
	if n := <-written; n >= offered {
		t.Errorf("the server could write all %d bytes: the client read the whole body", n)
	} else {
		t.Logf("server wrote %d of %d bytes before the client hung up", n, offered)
	}
}

func TestHTTPStatusClassification(t *testing.T) {
	for _, tc := range []struct {
		code      int
		permanent bool
	}{
		{500, false}, {502, false}, {503, false}, {429, false}, {408, false},
		{400, true}, {401, true}, {403, true}, {404, true}, {409, true}, {422, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, fmt.Sprintf("no luck (code %d)", tc.code), tc.code)
		}))
		out, err := newHTTP(t, map[string]any{"url": srv.URL + "/x?key=hidden"}).Run(context.Background(), testInput())
		srv.Close()
		if err == nil {
			t.Errorf("%d: no error (output %s)", tc.code, out)
			continue
		}
		if got := steps.IsPermanent(err); got != tc.permanent {
			t.Errorf("%d: IsPermanent = %v, want %v (%v)", tc.code, got, tc.permanent, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("status %d", tc.code)) || !strings.Contains(msg, fmt.Sprintf("no luck (code %d)", tc.code)) {
			t.Errorf("%d: error %q lacks the status or the body snippet", tc.code, msg)
		}
		if strings.Contains(msg, "hidden") {
			t.Errorf("%d: error %q shows the query string", tc.code, msg)
		}
	}
}

func TestHTTPLongErrorBodyIsCut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, strings.Repeat("e", 10_000))
	}))
	defer srv.Close()
	_, err := newHTTP(t, map[string]any{"url": srv.URL}).Run(context.Background(), testInput())
	if err == nil || !steps.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if n := len(err.Error()); n > 1000 {
		t.Errorf("error message is %d bytes; want a snippet", n)
	}
}

func TestHTTPTimeoutIsTransient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	_, err := newHTTP(t, map[string]any{"url": srv.URL, "timeout": "50ms"}).Run(context.Background(), testInput())
	if err == nil || steps.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("setting timeout: err = %v, want a transient deadline error", err)
	}

	// The step's own context (the orchestrator's step timeout) is honoured too.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = newHTTP(t, map[string]any{"url": srv.URL}).Run(ctx, testInput())
	if err == nil || steps.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ctx deadline: err = %v, want a transient deadline error", err)
	}
}

func TestHTTPNetworkErrorIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	_, err := newHTTP(t, map[string]any{"url": url}).Run(context.Background(), testInput())
	if err == nil || steps.IsPermanent(err) {
		t.Errorf("err = %v, want a transient error", err)
	}
}

func TestHTTPMissingParamIsPermanent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	step := newHTTP(t, map[string]any{"url": srv.URL, "body": "{{.Params.nope}}"})
	_, err := step.Run(context.Background(), testInput())
	if err == nil || !steps.IsPermanent(err) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("err = %v, want a permanent error naming the param", err)
	}
	if calls.Load() != 0 {
		t.Errorf("the request was sent %d times", calls.Load())
	}
}

func TestHTTPURLFromParamIsCheckedWhenExpanded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":1}`) }))
	defer srv.Close()
	step := newHTTP(t, map[string]any{"url": "{{.Params.endpoint}}/hook"})
	in := testInput()
	in.Params = map[string]string{"endpoint": srv.URL}
	if out, err := step.Run(context.Background(), in); err != nil || string(out) != `{"ok":1}` {
		t.Errorf("Run = %s, %v", out, err)
	}
	in.Params = map[string]string{"endpoint": "ftp://example.com"}
	if _, err := step.Run(context.Background(), in); err == nil || !steps.IsPermanent(err) {
		t.Errorf("ftp url: err = %v, want permanent", err)
	}
}

func TestHTTPBadSettingsListsEveryProblem(t *testing.T) {
	_, err := steps.NewHTTP(map[string]any{
		"url":     "ftp://example.com/{{.Date}}",
		"method":  "FETCH",
		"headers": map[string]any{"bad name": "x", "X-Ok": "{{.Params.x", "X-List": []any{"a"}},
		"body":    "{{if}}",
		"timeout": "soon",
		"colour":  "red",
		"retries": 3,
	})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`url "ftp://example.com/{{.Date}}"`,
		`method "FETCH"`,
		`"bad name" is not a valid header name`,
		`headers.X-Ok: bad template`,
		`headers.X-List must be a string`,
		`body: bad template`,
		`timeout "soon"`,
		`unknown setting "colour", "retries"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}

	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{nil, "url is required"},
		{map[string]any{"url": 42}, "url must be a string"},
		{map[string]any{"url": "/relative"}, "absolute"},
		{map[string]any{"url": "https:///nohost"}, "no host"},
		{map[string]any{"url": "http://x", "headers": "X-A: b"}, "headers must be a mapping"},
	} {
		_, err := steps.NewHTTP(tc.settings)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewHTTP(%v) = %v, want an error containing %q", tc.settings, err, tc.want)
		}
	}
}

// TestHTTPAudienceSendsIDToken runs the real idtoken flow for a service
// account key against a local token endpoint standing in for Google's.
func TestHTTPAudienceSendsIDToken(t *testing.T) {
	const audience = "https://private-service.example.run.app"
	var mints atomic.Int32
	b64 := base64.RawURLEncoding.EncodeToString
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		parts := strings.Split(r.PostForm.Get("assertion"), ".")
		if len(parts) != 3 {
			http.Error(w, "no assertion", 400)
			return
		}
		claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c struct {
			TargetAudience string `json:"target_audience"`
		}
		if json.Unmarshal(claims, &c) != nil || c.TargetAudience != audience {
			http.Error(w, "wrong target_audience: "+string(claims), 400)
			return
		}
		mints.Add(1)
		payload := fmt.Sprintf(`{"aud":%q,"exp":%d}`, audience, time.Now().Add(time.Hour).Unix())
		idTok := b64([]byte(`{"alg":"RS256"}`)) + "." + b64([]byte(payload)) + ".c2ln"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id_token": idTok, "token_type": "Bearer", "expires_in": 3600})
	}))
	defer tokenSrv.Close()

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	creds, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "test-project",
		"private_key_id": "k1",
		"private_key":    string(pemKey),
		"client_email":   "pipeline@test-project.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      tokenSrv.URL + "/token",
	})
	credsFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", credsFile)

	auths := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths <- r.Header.Get("Authorization")
	}))
	defer srv.Close()

	step := newHTTP(t, map[string]any{"url": srv.URL, "audience": audience})
	if mints.Load() != 0 {
		t.Errorf("a token was minted at construction; want on first Run")
	}
	for range 2 {
		if _, err := step.Run(context.Background(), testInput()); err != nil {
			t.Fatalf("Run: %v", err)
		}
		auth := <-auths
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || len(strings.Split(tok, ".")) != 3 {
			t.Errorf("Authorization = %q, want a bearer ID token", auth)
		}
	}
	if n := mints.Load(); n != 1 {
		t.Errorf("minted %d tokens for two runs, want 1 (cached)", n)
	}
}
