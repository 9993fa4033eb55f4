package deptest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docRef matches a document cited from a comment: a Markdown file by path
// or by bare name, or a path that leaves the repository (../shared/...),
// which a reader of the repository alone cannot open.
var docRef = regexp.MustCompile(`(?:\.\./)*[A-Za-z0-9_/-]*[A-Za-z0-9_-]+\.md\b|\.\./shared/[A-Za-z0-9_./-]+`)

// TestDocReferences: every document a Go file cites is in the repository:
// a path is read from the repository's root (docs/protocol.md), a bare name
// is looked for in docs/ and at the root (README.md).
func TestDocReferences(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || d.Name() == "docs_test.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, ref := range docRef.FindAllString(string(b), -1) {
			checked++
			if strings.Contains(ref, "shared/") || strings.HasPrefix(ref, "../") {
				t.Errorf("%s cites %s, which is outside the repository: cite docs/NAME.md", path, ref)
				continue
			}
			candidates := []string{filepath.Join(root, ref)}
			if !strings.Contains(ref, "/") {
				candidates = append(candidates, filepath.Join(root, "docs", ref))
			}
			found := false
			for _, c := range candidates {
				if _, err := os.Stat(c); err == nil {
					found = true
				}
			}
			if !found {
				t.Errorf("%s cites %s, which is not in the repository", path, ref)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no document references found: the pattern or the walk is broken")
	}
}
