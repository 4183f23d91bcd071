package fsemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"testing"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Project is the project NewClient uses on the emulator.
const Project = "demo-pipeline"

// ownerCreds sends what the client library sends to the emulator: the
// "Bearer owner" token the emulator accepts as admin, bypassing rules.
type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (ownerCreds) RequireTransportSecurity() bool { return false }

// Dial connects to the emulator at host the way the client library does when
// FIRESTORE_EMULATOR_HOST is set (plain text, "authorization: Bearer owner",
// unbounded messages), plus counter's interceptors if counter is not nil and
// then the extra unary interceptors (e.g. to inject faults). Pass the
// connection to firestore.NewClient with option.WithGRPCConn.
func Dial(host string, counter *OpCounter, extra ...grpc.UnaryClientInterceptor) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ownerCreds{}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(math.MaxInt32),
			grpc.MaxCallSendMsgSize(math.MaxInt32),
		),
	}
	if counter != nil {
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(counter.UnaryInterceptor()),
			grpc.WithChainStreamInterceptor(counter.StreamInterceptor()))
	}
	if len(extra) > 0 {
		opts = append(opts, grpc.WithChainUnaryInterceptor(extra...))
	}
	conn, err := grpc.NewClient("passthrough:///"+host, opts...)
	if err != nil {
		return nil, fmt.Errorf("fsemu: dial %s: %w", host, err)
	}
	return conn, nil
}

// NewClient returns a Firestore client of Project on the emulator (see Host)
// over a connection that counts its operations, and the counter. Both are
// closed when the test ends.
func NewClient(t testing.TB) (*firestore.Client, *OpCounter) {
	t.Helper()
	host := Host(t)
	counter := NewOpCounter()
	conn, err := Dial(host, counter)
	if err != nil {
		t.Fatal(err)
	}
	client, err := firestore.NewClient(context.Background(), Project, option.WithGRPCConn(conn))
	if err != nil {
		_ = conn.Close()
		t.Fatalf("fsemu: firestore client on %s: %v", host, err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		_ = conn.Close()
	})
	return client, counter
}

// Collection returns a collection name no other test uses: the test's name
// and a random suffix. Emulator state is shared, so tests keep to their own.
func Collection(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("fsemu: random collection: %v", err)
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	return "t_" + name + "_" + hex.EncodeToString(b[:])
}
