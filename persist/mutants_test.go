//go:build mutants

package persist_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mutant is a planted durability bug: a change to one source file that the
// crash tests must catch.
type mutant struct {
	name, file, from, to string
}

var mutants = []mutant{
	{"AckBeforeFsync", "persist/log.go",
		"\tif l.mode == SyncAlways {\n\t\treturn l.syncLocked()\n\t}",
		"\tif l.mode == SyncAlways {\n\t\tgo func() { l.mu.Lock(); l.syncLocked(); l.mu.Unlock() }()\n\t}"},
	{"NoSnapshotFsync", "persist/compact.go",
		"if err := f.Sync(); err != nil {\n\t\treturn fail(\"fsync\", err)",
		"if err := error(nil); err != nil {\n\t\treturn fail(\"fsync\", err)"},
	{"NoFolderFsyncAfterRename", "persist/compact.go",
		"\tif err := db.fs.SyncDir(db.dir); err != nil {\n\t\treturn 0, fmt.Errorf(\"compact: sync data folder after rename: %w\", err)",
		"\tif err := error(nil); err != nil {\n\t\treturn 0, fmt.Errorf(\"compact: sync data folder after rename: %w\", err)"},
	{"LogCutBeforeSnapshotDurable", "persist/compact.go",
		"\tsize, err := db.writeSnapshot(rev, entries)",
		"\tfor _, n := range names {\n\t\tif _, ok := parseSegName(n); ok && n < segName(rev+1) {\n\t\t\tdb.fs.Remove(filepath.Join(db.dir, n))\n\t\t}\n\t}\n\tsize, err := db.writeSnapshot(rev, entries)"},
}

// TestMutants plants each bug in a copy of the module and checks that the
// power-loss test goes red on it (and is green on the copy without it).
// make test runs it: a crash test that cannot fail is worse than none.
func TestMutants(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	run := func(dir string) (string, error) {
		cmd := exec.Command("go", "test", "-count=1", "-timeout=300s", "-run=^TestDB_PowerLoss$", "./persist/")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, m := range append([]mutant{{name: "None"}}, mutants...) {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, p := range []string{"go.mod", "go.sum", "engine", "persist"} {
				if out, err := exec.Command("cp", "-r", filepath.Join(root, p), filepath.Join(dir, p)).CombinedOutput(); err != nil {
					t.Fatalf("copy %s: %v %s", p, err, out)
				}
			}
			if m.file != "" {
				path := filepath.Join(dir, m.file)
				src, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Count(string(src), m.from) != 1 {
					t.Fatalf("the code to mutate is no longer in %s exactly once; update the mutant", m.file)
				}
				os.WriteFile(path, []byte(strings.Replace(string(src), m.from, m.to, 1)), 0o644)
			}
			out, err := run(dir)
			switch {
			case m.file == "" && err != nil:
				t.Fatalf("the unmutated copy fails:\n%s", out)
			case m.file != "" && err == nil:
				t.Fatalf("planted bug %s went unnoticed by TestDB_PowerLoss", m.name)
			case m.file != "" && !strings.Contains(out, "power loss at operation"):
				t.Fatalf("planted bug %s failed the build or the test for another reason:\n%s", m.name, out)
			}
		})
	}
}
