package boltledger

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// metaBucket holds the ledger's own settings; idKey its id.
var (
	metaBucket = []byte("ledger.meta")
	idKey      = []byte("id")
)

var _ pipeline.Namespacer = (*Ledger)(nil)

// Namespace is "bolt/" and a random id stored in the file when the ledger
// was first created in it: it follows the file (copied or moved, it keeps
// its id) and differs between files. Task names include it, so two local
// ledgers sharing a queue never take each other's names.
func (l *Ledger) Namespace() string { return "bolt/" + l.id }

// loadID reads the file's id, creating it on first use.
func loadID(tx *bbolt.Tx) (string, error) {
	b, err := tx.CreateBucketIfNotExists(metaBucket)
	if err != nil {
		return "", fmt.Errorf("bucket %s: %w", metaBucket, err)
	}
	if id := b.Get(idKey); id != nil {
		return string(id), nil
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("ledger id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	if err := b.Put(idKey, []byte(id)); err != nil {
		return "", err
	}
	return id, nil
}
