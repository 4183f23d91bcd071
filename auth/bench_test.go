package auth_test

import (
	"context"
	"testing"

	"github.com/pipelinehq/pipeline/auth"
)

// BenchmarkAuthenticate measures the service side of a local delivery: a
// token the queue reuses, so after the first call a cache hit plus the claim
// and allowlist checks. BenchmarkVerifyUncached measures a first sight.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	l, err := auth.NewLocalIssuer("http://127.0.0.1:8080", localEmail)
	if err != nil {
		b.Fatal(err)
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Audience: testAudience, Issuer: l.Issuer(), Allowed: []string{localEmail}, KeySet: l.KeySet()})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := l.Token(ctx, testAudience)
	if err != nil {
		b.Fatal(err)
	}
	r := request("Bearer " + tok)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLocalIssuerToken measures the queue side: a cached token.
func BenchmarkLocalIssuerToken(b *testing.B) {
	ctx := context.Background()
	l, err := auth.NewLocalIssuer("http://127.0.0.1:8080", localEmail)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Token(ctx, testAudience); err != nil {
			b.Fatal(err)
		}
	}
}
