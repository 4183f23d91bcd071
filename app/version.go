package app

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// versionText is what `pipeline --version` prints: the module version, the
// VCS revision and its time (Go stamps them into the binary at build time;
// `go run` and test binaries have no revision), and the Go version.
func versionText(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "pipeline (no build information)"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(unknown)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", bi.Main.Path, version)
	rev := settings["vcs.revision"]
	if rev == "" {
		rev = "unknown (built without VCS information, e.g. go run)"
	} else if settings["vcs.modified"] == "true" {
		rev += " (with uncommitted changes)"
	}
	fmt.Fprintf(&b, "revision:   %s\n", rev)
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "build time: %s (the revision's commit time)\n", t)
	}
	fmt.Fprintf(&b, "go:         %s", bi.GoVersion)
	return b.String()
}

// buildVersion reads this binary's build information.
func buildVersion() string { return versionText(debug.ReadBuildInfo()) }
