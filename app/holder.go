package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	berrors "go.etcd.io/bbolt/errors"
)

// holderPath is where a local `pipeline serve` writes the URL it listens on,
// so that a second process finding the store locked can name it.
func holderPath(cfg *Config) string { return filepath.Join(cfg.Data, "serve.url") }

// recordHolder writes url to the holder file; the returned func removes it.
func recordHolder(cfg *Config, url string) (func(), error) {
	path := holderPath(cfg)
	if err := os.WriteFile(path, []byte(url+"\n"), 0o644); err != nil {
		return func() {}, fmt.Errorf("record the service URL in %s: %w", path, err)
	}
	return func() { _ = os.Remove(path) }, nil
}

// storeBusy explains err when it is bbolt's lock timeout: another process
// (a `pipeline serve`, at the address it recorded if any) holds the store,
// and operator commands reach that service with --url. Other errors are
// returned unchanged.
func storeBusy(cfg *Config, err error) error {
	if !errors.Is(err, berrors.ErrTimeout) {
		return err
	}
	db := filepath.Join(cfg.Data, "pipeline.db")
	if b, rerr := os.ReadFile(holderPath(cfg)); rerr == nil {
		if url := strings.TrimSpace(string(b)); url != "" {
			return fmt.Errorf("the local store %s is held by `pipeline serve` at %s: operator commands (status, enqueue, runs, ...) reach it with --url %s; stop it first to use run", db, url, url)
		}
	}
	return fmt.Errorf("the local store %s is held by another pipeline process (probably `pipeline serve`): operator commands reach a serve with --url http://127.0.0.1:PORT (PORT, default 8080); stop it first to use run", db)
}
