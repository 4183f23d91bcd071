package fsemu

import (
	"context"
	"errors"
	"io"
	"path"
	"sync"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc"
)

// OpCounter counts the billable Firestore operations that pass through a
// connection made with its interceptors (see Dial):
//
//   - reads: 1 per successful GetDocument; 1 per document (found or missing)
//     in a BatchGetDocuments answer; 1 per document a RunQuery returns, at
//     least 1 per query;
//   - writes: the writes of every successful Commit or BatchWrite.
//
// It also counts calls per RPC method. It is safe for concurrent use.
type OpCounter struct {
	mu     sync.Mutex
	reads  int64
	writes int64
	calls  map[string]int64
}

// NewOpCounter returns a counter at zero.
func NewOpCounter() *OpCounter { return &OpCounter{calls: map[string]int64{}} }

// Reads is the number of document reads counted.
func (c *OpCounter) Reads() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// Writes is the number of document writes counted.
func (c *OpCounter) Writes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// Calls is the number of calls of an RPC method, by its short name
// ("Commit", "BatchGetDocuments", ...), failed ones included.
func (c *OpCounter) Calls(method string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// Reset sets every count to zero.
func (c *OpCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads, c.writes = 0, 0
	clear(c.calls)
}

func (c *OpCounter) add(method string, reads, writes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if method != "" {
		c.calls[method]++
	}
	c.reads += reads
	c.writes += writes
}

// UnaryInterceptor counts unary calls: GetDocument, Commit, BatchWrite.
func (c *OpCounter) UnaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		var reads, writes int64
		if err == nil {
			switch r := req.(type) {
			case *pb.GetDocumentRequest:
				reads = 1
			case *pb.CommitRequest:
				writes = int64(len(r.GetWrites()))
			case *pb.BatchWriteRequest:
				writes = int64(len(r.GetWrites()))
			}
		}
		c.add(path.Base(method), reads, writes)
		return err
	}
}

// StreamInterceptor counts streaming calls: BatchGetDocuments, RunQuery.
func (c *OpCounter) StreamInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		c.add(path.Base(method), 0, 0)
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &countingStream{ClientStream: s, c: c}, nil
	}
}

// countingStream counts the documents a stream receives.
type countingStream struct {
	grpc.ClientStream
	c     *OpCounter
	query bool  // a RunQuery stream
	docs  int64 // documents a RunQuery returned so far
}

func (s *countingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		if errors.Is(err, io.EOF) && s.query && s.docs == 0 {
			s.c.add("", 1, 0) // an empty query is billed one read
		}
		return err
	}
	switch r := m.(type) {
	case *pb.BatchGetDocumentsResponse:
		if r.GetFound() != nil || r.GetMissing() != "" {
			s.c.add("", 1, 0)
		}
	case *pb.RunQueryResponse:
		s.query = true
		if r.GetDocument() != nil {
			s.docs++
			s.c.add("", 1, 0)
		}
	}
	return nil
}
