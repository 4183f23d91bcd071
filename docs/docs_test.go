package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// documents are the user-facing documents, relative to the repository root.
var documents = []string{"README.md", "docs/design.md", "docs/deploy.md", "docs/performance.md", "docs/reliability.md", "docs/async.md"}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testNames collects the names of every test function in the repository.
func testNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "data") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestDocumentsNameOnlyTestsThatExist: a test a document names as the guard
// of a promise (`TestSomething`) exists, so a renamed or deleted test cannot
// leave a promise documented as guarded when it is not.
func TestDocumentsNameOnlyTestsThatExist(t *testing.T) {
	names := testNames(t)
	if len(names) < 50 {
		t.Fatalf("found only %d test functions: is the walk rooted at the repository?", len(names))
	}
	cited := regexp.MustCompile("`(Test[A-Z][A-Za-z0-9_]*)`")
	for _, doc := range documents {
		for _, m := range cited.FindAllStringSubmatch(read(t, doc), -1) {
			if !names[m[1]] {
				t.Errorf("%s names %s, which no _test.go file declares", doc, m[1])
			}
		}
	}
}

// TestDesignDocCoversEveryInvariant: docs/design.md states the 14 invariants,
// each with a guarding test or an explicit "(test pending)".
func TestDesignDocCoversEveryInvariant(t *testing.T) {
	doc := read(t, "docs/design.md")
	start := strings.Index(doc, "\n## Invariants")
	if start < 0 {
		t.Fatal("docs/design.md has no Invariants section")
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	items := regexp.MustCompile(`(?m)^(\d+)\. `).FindAllStringSubmatchIndex(section, -1)
	if len(items) != 14 {
		t.Fatalf("docs/design.md lists %d invariants, want 14", len(items))
	}
	for i, it := range items {
		end := len(section)
		if i+1 < len(items) {
			end = items[i+1][0]
		}
		item := section[it[0]:end]
		if !strings.Contains(item, "`Test") && !strings.Contains(item, "(test pending)") {
			t.Errorf("invariant %s names no test and is not marked (test pending)", section[it[2]:it[3]])
		}
	}
}

// TestDocumentsStandOnTheirOwn: relative links resolve inside the
// repository, and no document cites a design brief that is not in it.
func TestDocumentsStandOnTheirOwn(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	for _, doc := range documents {
		text := read(t, doc)
		if strings.Contains(text, "DESIGN.md") {
			t.Errorf("%s cites DESIGN.md, which is not in the repository (docs/design.md is)", doc)
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			rel := filepath.Join(filepath.Dir(doc), target)
			if _, err := os.Stat(filepath.Join("..", rel)); err != nil {
				t.Errorf("%s links to %s, which does not exist", doc, target)
			}
		}
	}
}

// TestReadmeFirstScreenStatesThePrerequisites: the README's first screen
// states the Go version of go.mod's go line and what the tests need.
func TestReadmeFirstScreenStatesThePrerequisites(t *testing.T) {
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+(\.\d+)?)$`).FindStringSubmatch(read(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	lines := strings.Split(read(t, "README.md"), "\n")
	first := strings.Join(lines[:min(len(lines), 50)], "\n")
	for _, want := range []string{"Go " + m[1], "C compiler", "-race", "gcloud", "cloud-firestore-emulator", "Java", "CI=true"} {
		if !strings.Contains(first, want) {
			t.Errorf("the README's first 50 lines do not mention %q", want)
		}
	}
}

// TestReadmeLayoutNamesEveryPackage: the README's Layout table names every
// Go package of the module (a newcomer's map must not miss a directory).
func TestReadmeLayoutNamesEveryPackage(t *testing.T) {
	readme := read(t, "README.md")
	start := strings.Index(readme, "\n## Layout")
	if start < 0 {
		t.Fatal("README.md has no Layout section")
	}
	layout := readme[start+1:]
	if end := strings.Index(layout, "\n## "); end >= 0 {
		layout = layout[:end]
	}
	dirs := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "data" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			rel, err := filepath.Rel("..", filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d packages: is the walk rooted at the repository?", len(dirs))
	}
	for dir := range dirs {
		if dir == "." || dir == "queue" {
			continue // the module root has no package; queue holds only its doc
		}
		if !strings.Contains(layout, "`"+dir+"`") && !strings.Contains(layout, "`"+dir+"/`") {
			t.Errorf("the README's Layout does not name %s", dir)
		}
	}
}
