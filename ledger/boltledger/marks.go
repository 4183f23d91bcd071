package boltledger

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// markRecord is a mark as stored (its ID is the key).
type markRecord struct {
	Kind      string            `json:"kind"`
	Pipeline  string            `json:"pipeline"`
	Key       string            `json:"key,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at,omitzero"`
}

func newMarkRecord(m pipeline.Mark) markRecord {
	return markRecord{Kind: string(m.Kind), Pipeline: m.Pipeline, Key: m.Key, Fields: m.Fields, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func (rec markRecord) mark(id string, version int64) pipeline.Mark {
	return pipeline.Mark{
		ID: id, Kind: pipeline.MarkKind(rec.Kind), Pipeline: rec.Pipeline, Key: rec.Key,
		Fields: rec.Fields, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, Version: version,
	}
}

// CreateMark writes m with version 1 unless a mark with its ID exists: then
// it returns that mark and created=false.
func (l *Ledger) CreateMark(ctx context.Context, m pipeline.Mark) (pipeline.Mark, bool, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.Mark{}, false, fmt.Errorf("boltledger: create mark %s: %w", m.ID, err)
	}
	if m.ID == "" {
		return pipeline.Mark{}, false, fmt.Errorf("boltledger: create mark: %w: empty mark ID", pipeline.ErrInvalid)
	}
	val, err := encode(1, newMarkRecord(m))
	if err != nil {
		return pipeline.Mark{}, false, fmt.Errorf("boltledger: create mark %s: %w", m.ID, err)
	}
	var (
		existing pipeline.Mark
		exists   bool
	)
	err = l.write(func(tx *bbolt.Tx) error {
		existing, exists = pipeline.Mark{}, false
		b := tx.Bucket(marksBucket)
		if cur := b.Get([]byte(m.ID)); cur != nil {
			var rec markRecord
			version, err := decode(cur, &rec)
			if err != nil {
				return fmt.Errorf("mark %s: %w", m.ID, err)
			}
			existing, exists = rec.mark(m.ID, version), true
			return nil
		}
		return b.Put([]byte(m.ID), val)
	})
	if err != nil {
		return pipeline.Mark{}, false, fmt.Errorf("boltledger: create mark %s: %w", m.ID, err)
	}
	if exists {
		return existing, false, nil
	}
	m.Version = 1
	return m, true, nil
}

// GetMark returns the mark with that ID.
func (l *Ledger) GetMark(ctx context.Context, id string) (pipeline.Mark, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.Mark{}, fmt.Errorf("boltledger: get mark %s: %w", id, err)
	}
	var m pipeline.Mark
	err := l.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(marksBucket).Get([]byte(id))
		if v == nil {
			return pipeline.ErrNotFound
		}
		var rec markRecord
		version, err := decode(v, &rec)
		if err != nil {
			return err
		}
		m = rec.mark(id, version)
		return nil
	})
	if err != nil {
		return pipeline.Mark{}, fmt.Errorf("boltledger: get mark %s: %w", id, err)
	}
	return m, nil
}

// UpdateMark writes m if m.Version is the stored version.
func (l *Ledger) UpdateMark(ctx context.Context, m pipeline.Mark) (pipeline.Mark, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.Mark{}, fmt.Errorf("boltledger: update mark %s: %w", m.ID, err)
	}
	var (
		outcome error
		version int64
	)
	err := l.write(func(tx *bbolt.Tx) error {
		outcome, version = nil, 0
		b := tx.Bucket(marksBucket)
		cur := b.Get([]byte(m.ID))
		if cur == nil {
			outcome = pipeline.ErrNotFound
			return nil
		}
		stored, err := versionOf(cur)
		if err != nil {
			return fmt.Errorf("mark %s: %w", m.ID, err)
		}
		if stored != m.Version {
			outcome = fmt.Errorf("%w: version %d, stored %d", pipeline.ErrConflict, m.Version, stored)
			return nil
		}
		version = stored + 1
		v, err := encode(version, newMarkRecord(m))
		if err != nil {
			outcome = err
			return nil
		}
		return b.Put([]byte(m.ID), v)
	})
	if err == nil {
		err = outcome
	}
	if err != nil {
		return pipeline.Mark{}, fmt.Errorf("boltledger: update mark %s: %w", m.ID, err)
	}
	m.Version = version
	return m, nil
}
