package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverStep is one step of a chain as a River job.
type riverStep struct {
	Chain string `json:"chain"`
	Step  int    `json:"step"`
}

func (riverStep) Kind() string { return "step" }

// riverWorker records the step's start, then in one transaction marks the
// job completed (river.JobCompleteTx) and inserts the chain's next step, so
// that a step's completion and its successor are one durable commit.
type riverWorker struct {
	river.WorkerDefaults[riverStep]
	pool  *pgxpool.Pool
	c     *chains
	steps int
}

func (w *riverWorker) Work(ctx context.Context, job *river.Job[riverStep]) error {
	w.c.started(job.Args.Chain, job.Args.Step)
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if job.Args.Step+1 < w.steps {
		client := river.ClientFromContext[pgx.Tx](ctx)
		if _, err := client.InsertTx(ctx, tx, riverStep{Chain: job.Args.Chain, Step: job.Args.Step + 1}, &river.InsertOpts{MaxAttempts: 4}); err != nil {
			return fmt.Errorf("insert next step: %w", err)
		}
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// riverMigrate brings the River schema of the database at url up to date.
func riverMigrate(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("river migrate: connect: %w", err)
	}
	defer pool.Close()
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	return nil
}

// runRiver runs the workload on River against the PostgreSQL at url (already
// migrated). River is set to fetch at most every 1 ms and to poll every 1 ms
// when LISTEN/NOTIFY is quiet (defaults: 100 ms and 1 s).
func runRiver(ctx context.Context, url string, steps, n, conc int) (result, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return result{}, fmt.Errorf("river: %w", err)
	}
	cfg.MaxConns = 80 // under PostgreSQL's default max_connections (100); at most 50 steps are in flight
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return result{}, fmt.Errorf("river: connect: %w", err)
	}
	defer pool.Close()
	c := newChains(steps)
	workers := river.NewWorkers()
	river.AddWorker(workers, &riverWorker{pool: pool, c: c, steps: steps})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 100}},
		Workers:           workers,
		FetchCooldown:     time.Millisecond,
		FetchPollInterval: time.Millisecond,
		Logger:            quietLogger(),
	})
	if err != nil {
		return result{}, fmt.Errorf("river: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return result{}, fmt.Errorf("river: start: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := client.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Printf("river: stop: %v\n", err)
		}
	}()
	wall, err := runChains(c, n, conc, func(id string) error {
		_, err := client.Insert(ctx, riverStep{Chain: id}, &river.InsertOpts{MaxAttempts: 4})
		return err
	})
	if err != nil {
		return result{}, err
	}
	return result{peer: "river", mode: "postgres", chains: n, concurrent: conc, wall: wall, gaps: c.gaps(), steps: steps}, nil
}

// quietLogger logs River's warnings and errors only.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
