package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// preflight checks what a command needs before it creates anything (the data
// directory, its logs, the store): the configuration and that every pipeline
// file exists. Its errors are usage or configuration errors (exit 2).
func preflight(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return configError(err)
	}
	return checkPipelineFiles(cfg)
}

// configError is a configuration error: every problem on its own line, exit 2.
func configError(err error) error {
	var lines []string
	collect(err, &lines)
	return exitCode{code: ExitUsage, msg: "configuration:\n  - " + strings.Join(lines, "\n  - ")}
}

// checkPipelineFiles reports a pipeline file or directory that does not
// exist in one line: the path and the way out.
func checkPipelineFiles(cfg *Config) error {
	var missing []string
	for _, p := range cfg.File {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return exitCode{code: ExitUsage, msg: fmt.Sprintf("pipeline file %s: no such file or directory; run from the repository root or pass -f FILE (PIPELINE_FILE)", strings.Join(missing, ", "))}
}
