package boltledger

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A new file is made durable with its name: its directory, each directory
// OpenDB created for it and the existing one they were created in are
// synced, deepest first; reopening syncs nothing.
func TestOpenDBSyncsTheDirectoriesItAddsTo(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "pipeline.db")
	var synced []string
	record := func(dir string) error {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("synced %s, which does not exist: %v", dir, err)
		}
		synced = append(synced, dir)
		return nil
	}
	db, err := openDB(path, record)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, "a", "b"), filepath.Join(root, "a"), root}
	if !slices.Equal(synced, want) {
		t.Errorf("synced %q, want %q", synced, want)
	}
	synced = nil
	db, err = openDB(path, record)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if len(synced) != 0 {
		t.Errorf("reopening synced %q, want nothing", synced)
	}
}

func TestSyncDir(t *testing.T) {
	if err := syncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("syncing a missing directory succeeded")
	}
}
