package auth

import (
	"sync"
	"time"
)

// Verified tokens are remembered for at most cacheTTL (and never past their
// exp), so a token reused by its caller (Cloud Tasks and the local issuer
// reuse theirs) costs one signature check, and a key removed from the
// issuer's set stops being honoured within cacheTTL.
const (
	cacheTTL     = 5 * time.Minute
	cacheEntries = 1024
)

// tokenCache maps a raw token whose signature and claims were verified to
// its claims. A nil *tokenCache caches nothing.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedClaims
}

type cachedClaims struct {
	c     claims
	until time.Time
}

func newTokenCache() *tokenCache {
	return &tokenCache{m: make(map[string]cachedClaims)}
}

func (tc *tokenCache) get(raw string, now time.Time) (claims, bool) {
	if tc == nil {
		return claims{}, false
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	e, ok := tc.m[raw]
	if !ok {
		return claims{}, false
	}
	if !now.Before(e.until) {
		delete(tc.m, raw)
		return claims{}, false
	}
	return e.c, true
}

func (tc *tokenCache) put(raw string, c claims, now time.Time) {
	if tc == nil || c.Expiry == nil {
		return
	}
	until := now.Add(cacheTTL)
	if exp := c.Expiry.Time(); exp.Before(until) {
		until = exp
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.m) >= cacheEntries {
		clear(tc.m) // simple bound; a burst of new tokens just re-verifies
	}
	tc.m[raw] = cachedClaims{c: c, until: until}
}
