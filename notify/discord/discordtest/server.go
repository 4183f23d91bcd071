// Package discordtest is a local stand-in for Discord's webhook API: it
// answers execute (POST /api/webhooks/{id}/{token}?wait=true) and message
// edits (PATCH .../messages/{message_id}), checks every payload against
// Discord's limits and the allowed-mentions rules, records what it received,
// and can play an outage, a 429 storm or a hang.
package discordtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
)

// Message is a message as the stand-in holds it.
type Message struct {
	ID              string
	Content         string
	Embeds          []*discordgo.MessageEmbed
	AllowedMentions *discordgo.MessageAllowedMentions
}

// Request is one request the stand-in answered with success.
type Request struct {
	Method    string
	MessageID string // the message posted or edited
	Message   Message
}

// Server is the stand-in. Create it with New; Close it when done.
type Server struct {
	*httptest.Server
	ID, Token string

	mu         sync.Mutex
	nextID     int
	messages   map[string]*Message
	posts      []Request
	edits      []Request
	violations []string
	allowed    []string // IDs a message may allow to be pinged
	down       int      // status to answer while down (0: up)
	faults     []fault  // answered before anything else, in order
	hold       chan struct{}
	held       chan struct{}
	requests   int
	hits       []Hit
	waiting    int
}

// Hit is one request as answered: when it arrived and with what status.
type Hit struct {
	At     time.Time
	Status int
	// RetryAfter is what a 429 asked for.
	RetryAfter time.Duration
}

type fault struct {
	status     int
	retryAfter float64
}

var pathRE = regexp.MustCompile(`^/api/(?:v[0-9]+/)?webhooks/([^/]+)/([^/]+)(?:/messages/([^/]+))?$`)

// New starts a stand-in on 127.0.0.1.
func New() *Server {
	s := &Server{ID: "123456789012345678", Token: "stand-in-token", messages: map[string]*Message{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// WebhookURL is the URL to configure as DISCORD_WEBHOOK_URL.
func (s *Server) WebhookURL() string {
	return s.URL + "/api/webhooks/" + s.ID + "/" + s.Token
}

// AllowMentions sets the IDs a message may name in allowed_mentions.
func (s *Server) AllowMentions(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed = ids
}

// Down makes every request fail with status (e.g. 503) until Up.
func (s *Server) Down(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = status
}

// Up ends an outage.
func (s *Server) Up() { s.Down(0) }

// Fail answers the next n requests with status.
func (s *Server) Fail(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status})
	}
}

// Unavailable answers the next n requests 503 with Retry-After seconds.
func (s *Server) Unavailable(n int, retryAfter float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: http.StatusServiceUnavailable, retryAfter: retryAfter})
	}
}

// RateLimit answers the next n requests with 429 and retry_after seconds.
func (s *Server) RateLimit(n int, retryAfter float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: http.StatusTooManyRequests, retryAfter: retryAfter})
	}
}

// Hold makes requests wait until Release; Arrived is signalled as each
// request arrives.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
	s.held = make(chan struct{}, 1024)
}

// Arrived is signalled when a request arrives while held.
func (s *Server) Arrived() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Waiting counts the requests held right now.
func (s *Server) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// Release lets held requests (and later ones) through.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Posts are the messages posted, in order.
func (s *Server) Posts() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.posts)
}

// Edits are the successful edits, in order.
func (s *Server) Edits() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.edits)
}

// Message is the current state of a message, or nil.
func (s *Server) Message(id string) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.messages[id]; ok {
		c := *m
		return &c
	}
	return nil
}

// Delete removes a message, as a person in the channel might.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.messages, id)
}

// Requests counts every request received, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Hits are every answered request, in order of arrival.
func (s *Server) Hits() []Hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

// Violations are the payload problems seen: a payload Discord would reject,
// or one that would ping someone it should not.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

type payload struct {
	Content         *string                   `json:"content"`
	Embeds          []*discordgo.MessageEmbed `json:"embeds"`
	AllowedMentions json.RawMessage           `json:"allowed_mentions"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	w = rec
	defer func() {
		s.mu.Lock()
		s.hits = append(s.hits, Hit{At: at, Status: rec.status, RetryAfter: rec.retryAfter})
		s.mu.Unlock()
	}()
	// Read the body first: only then does the server notice a client that
	// gives up while the request is held.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": err.Error()})
		return
	}
	s.mu.Lock()
	s.requests++
	hold, held := s.hold, s.held
	s.mu.Unlock()
	if hold != nil {
		s.mu.Lock()
		s.waiting++
		s.mu.Unlock()
		held <- struct{}{}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
		if r.Context().Err() != nil {
			return // the client gave up: Discord never saw it
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		s.fail(w, f)
		return
	}
	if s.down != 0 {
		s.fail(w, fault{status: s.down})
		return
	}
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil || m[1] != s.ID || m[2] != s.Token {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Unknown Webhook", "code": 10015})
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		s.violate("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid JSON"})
		return
	}
	am, problems := s.check(p)
	if len(problems) > 0 {
		for _, pr := range problems {
			s.violate("%s: %s", r.Method, pr)
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "errors": problems})
		return
	}
	switch {
	case r.Method == http.MethodPost && m[3] == "":
		if r.URL.Query().Get("wait") != "true" {
			s.violate("POST without wait=true: no message id would come back")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.nextID++
		msg := &Message{ID: strconv.Itoa(1000 + s.nextID), Embeds: p.Embeds, AllowedMentions: am}
		if p.Content != nil {
			msg.Content = *p.Content
		}
		s.messages[msg.ID] = msg
		s.posts = append(s.posts, Request{Method: r.Method, MessageID: msg.ID, Message: *msg})
		writeJSON(w, http.StatusOK, toDiscord(msg))
	case r.Method == http.MethodPatch && m[3] != "":
		msg, ok := s.messages[m[3]]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "Unknown Message", "code": 10008})
			return
		}
		if p.Content != nil {
			msg.Content = *p.Content
		}
		if p.Embeds != nil {
			msg.Embeds = p.Embeds
		}
		msg.AllowedMentions = am
		s.edits = append(s.edits, Request{Method: r.Method, MessageID: msg.ID, Message: *msg})
		writeJSON(w, http.StatusOK, toDiscord(msg))
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"message": "405: Method Not Allowed"})
	}
}

func (s *Server) fail(w http.ResponseWriter, f fault) {
	if f.status == http.StatusTooManyRequests {
		if rec, ok := w.(*statusRecorder); ok {
			rec.retryAfter = time.Duration(f.retryAfter * float64(time.Second))
		}
		w.Header().Set("Retry-After", strconv.FormatFloat(f.retryAfter, 'f', -1, 64))
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(f.retryAfter, 'f', -1, 64))
		writeJSON(w, f.status, map[string]any{"message": "You are being rate limited.", "retry_after": f.retryAfter, "global": false})
		return
	}
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatFloat(f.retryAfter, 'f', -1, 64))
	}
	http.Error(w, http.StatusText(f.status), f.status)
}

// check validates a payload as Discord would, plus allowed mentions.
func (s *Server) check(p payload) (*discordgo.MessageAllowedMentions, []string) {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if p.Content != nil && utf8.RuneCountInString(*p.Content) > 2000 {
		bad("content is %d runes, more than 2000", utf8.RuneCountInString(*p.Content))
	}
	if len(p.Embeds) > 10 {
		bad("%d embeds, more than 10", len(p.Embeds))
	}
	total := 0
	for i, e := range p.Embeds {
		n := func(s string) int { return utf8.RuneCountInString(s) }
		limit := func(what string, s string, max int) {
			if n(s) > max {
				bad("embed %d: %s is %d runes, more than %d", i, what, n(s), max)
			}
			total += n(s)
		}
		limit("title", e.Title, 256)
		limit("description", e.Description, 4096)
		if len(e.Fields) > 25 {
			bad("embed %d: %d fields, more than 25", i, len(e.Fields))
		}
		for j, f := range e.Fields {
			if f.Name == "" || f.Value == "" {
				bad("embed %d: field %d has an empty name or value", i, j)
			}
			limit(fmt.Sprintf("field %d name", j), f.Name, 256)
			limit(fmt.Sprintf("field %d value", j), f.Value, 1024)
		}
		if e.Footer != nil {
			limit("footer", e.Footer.Text, 2048)
		}
		if e.Author != nil {
			limit("author", e.Author.Name, 256)
		}
	}
	if total > 6000 {
		bad("embeds total %d runes, more than 6000", total)
	}
	if len(p.AllowedMentions) == 0 || string(p.AllowedMentions) == "null" {
		bad("allowed_mentions is missing: text could ping @everyone")
		return nil, problems
	}
	var raw struct {
		Parse *[]string `json:"parse"`
		Roles []string  `json:"roles"`
		Users []string  `json:"users"`
	}
	if err := json.Unmarshal(p.AllowedMentions, &raw); err != nil {
		bad("allowed_mentions: %v", err)
		return nil, problems
	}
	if raw.Parse == nil || len(*raw.Parse) != 0 {
		bad("allowed_mentions.parse must be [] (got %s)", string(p.AllowedMentions))
	}
	for _, id := range append(slices.Clone(raw.Roles), raw.Users...) {
		if !slices.Contains(s.allowed, id) {
			bad("allowed_mentions lets %s be pinged", id)
		}
	}
	am := &discordgo.MessageAllowedMentions{Roles: raw.Roles, Users: raw.Users}
	if raw.Parse != nil {
		for _, t := range *raw.Parse {
			am.Parse = append(am.Parse, discordgo.AllowedMentionType(t))
		}
	}
	return am, problems
}

func (s *Server) violate(format string, a ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, a...))
}

func toDiscord(m *Message) *discordgo.Message {
	return &discordgo.Message{ID: m.ID, ChannelID: "1", Content: m.Content, Embeds: m.Embeds}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type statusRecorder struct {
	http.ResponseWriter
	status     int
	retryAfter time.Duration
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}
