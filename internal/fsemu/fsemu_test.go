package fsemu_test

import (
	"context"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/pipelinehq/pipeline/internal/fsemu"
)

func TestMain(m *testing.M) { fsemu.Main(m) }

func TestCollectionIsFresh(t *testing.T) {
	a, b := fsemu.Collection(t), fsemu.Collection(t)
	if a == b {
		t.Fatalf("Collection returned %q twice", a)
	}
}

func TestOpCounter(t *testing.T) {
	ctx := context.Background()
	client, ops := fsemu.NewClient(t)
	coll := client.Collection(fsemu.Collection(t))

	batch := client.Batch() //nolint:staticcheck // the batch is what is counted
	batch.Create(coll.Doc("a"), map[string]any{"n": 1})
	batch.Create(coll.Doc("b"), map[string]any{"n": 2})
	if _, err := batch.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.Doc("a").Update(ctx, []firestore.Update{{Path: "n", Value: 3}}); err != nil {
		t.Fatal(err)
	}
	check(t, ops, "3 writes in 2 commits", 0, 3)
	if got := ops.Calls("Commit"); got != 2 {
		t.Errorf("Commit calls = %d, want 2", got)
	}

	ops.Reset()
	if _, err := coll.Doc("a").Get(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, ops, "Get", 1, 0)

	ops.Reset()
	snaps, err := client.GetAll(ctx, []*firestore.DocumentRef{coll.Doc("a"), coll.Doc("b"), coll.Doc("missing")})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 3 || !snaps[0].Exists() || !snaps[1].Exists() || snaps[2].Exists() {
		t.Fatalf("GetAll = %v", snaps)
	}
	check(t, ops, "GetAll of 3 (one missing)", 3, 0)
	if got := ops.Calls("BatchGetDocuments"); got != 1 {
		t.Errorf("BatchGetDocuments calls = %d, want 1", got)
	}

	ops.Reset()
	docs, err := coll.OrderBy("n", firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("query returned %d documents, want 2", len(docs))
	}
	check(t, ops, "query of 2", 2, 0)

	ops.Reset()
	if _, err := coll.Where("n", "==", 99).Documents(ctx).GetAll(); err != nil {
		t.Fatal(err)
	}
	check(t, ops, "empty query", 1, 0)
}

func check(t *testing.T, ops *fsemu.OpCounter, what string, reads, writes int64) {
	t.Helper()
	if ops.Reads() != reads || ops.Writes() != writes {
		t.Errorf("%s: %d reads, %d writes; want %d, %d", what, ops.Reads(), ops.Writes(), reads, writes)
	}
}
