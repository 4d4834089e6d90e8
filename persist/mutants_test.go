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
// crash tests must catch. test names the test that must go red (default
// TestDB_PowerLoss) and marker a text its failure must print (default
// "power loss at operation"), so a build failure does not pass for a catch.
type mutant struct {
	name, file, from, to string
	test, marker         string
}

var mutants = []mutant{
	{"AckBeforeFsync", "persist/log.go",
		"\tif l.mode == SyncAlways {\n\t\treturn l.syncLocked()\n\t}",
		"\tif l.mode == SyncAlways {\n\t\tgo func() { l.mu.Lock(); l.syncLocked(); l.mu.Unlock() }()\n\t}", "", ""},
	{"NoSnapshotFsync", "persist/compact.go",
		"if err := f.Sync(); err != nil {\n\t\treturn fail(\"fsync\", err)",
		"if err := error(nil); err != nil {\n\t\treturn fail(\"fsync\", err)", "", ""},
	{"NoFolderFsyncAfterRename", "persist/compact.go",
		"\tif err := db.fs.SyncDir(db.dir); err != nil {\n\t\treturn 0, fmt.Errorf(\"compact: sync data folder after rename: %w\", err)",
		"\tif err := error(nil); err != nil {\n\t\treturn 0, fmt.Errorf(\"compact: sync data folder after rename: %w\", err)", "", ""},
	{"LogCutBeforeSnapshotDurable", "persist/compact.go",
		"\tsize, err := db.writeSnapshot(rev, entries)",
		"\tfor _, n := range names {\n\t\tif _, ok := parseSegName(n); ok && n < segName(rev+1) {\n\t\t\tdb.fs.Remove(filepath.Join(db.dir, n))\n\t\t}\n\t}\n\tsize, err := db.writeSnapshot(rev, entries)", "", ""},
	// The log's records are made durable by fdatasync: skipping it
	// acknowledges writes a power loss takes back.
	{"NoDatasync", "persist/log.go",
		"\terr := l.f.Datasync()",
		"\terr := error(nil)", "", ""},
	// After recovery, writes must go on at the end of the records, not at
	// the end of the file (after the zeros): the next recovery would take
	// the zeros before them for the end, or a hole, and lose them.
	{"ResumeAfterZeros", "persist/log.go",
		"f: f, name: name, size: size, alloc: alloc,",
		"f: f, name: name, size: alloc, alloc: alloc,", "", ""},
	// A cut must leave zeros after the recovered records (the file is
	// truncated and zero-filled again): left in place, the torn bytes
	// would follow the next, shorter write.
	{"CutLeavesTornBytes", "persist/db.go",
		"\terr = w.Truncate(off)\n",
		"\terr = nil\n", "TestDB_TornTail", "the segment is not its"},
	// Pages of unsynced writes reach the disk in any order, so a power
	// loss can leave a record with a hole and records after it: refusing
	// that (as the log did when it only appended) leaves a store that will
	// not open after an ordinary power loss.
	{"HoleBeforeRecordsRefused", "persist/db.go",
		"\t\t\tif !ok || !torn && validAfter {",
		"\t\t\tif !ok || validAfter {", "TestDB_PowerLossEverySec", "power loss at operation"},
	// os.File.WriteAt reports no bytes when pwrite wrote some and then
	// failed (a disk filling up): an undo that trusts the count leaves a
	// partial record behind the records (TestFullDisk found it).
	{"UndoTrustsWriteCount", "persist/log.go",
		"\t\tif uerr := l.undoLocked(tried); uerr != nil {",
		"\t\t_ = tried\n\t\tif uerr := l.undoLocked(l.size + n); uerr != nil {", "TestDB_FailedWriteLeavesZeros", "the segment is not its"},
	// The zeros of an undo must be durable before the refused write is
	// answered: the kernel may have written the refused record back
	// already, and a power loss would bring it back.
	{"UndoNotDurable", "persist/log.go",
		"\tif err := l.f.Datasync(); err != nil {\n\t\treturn fmt.Errorf(\"fdatasync the undo",
		"\tif err := error(nil); err != nil {\n\t\treturn fmt.Errorf(\"fdatasync the undo", "TestDB_FailedWriteNotResurrected", "power loss after a refused write"},
}

// TestMutants plants each bug in a copy of the module and checks that its
// test (the power-loss test, unless the mutant names another) goes red on
// it, and that the copy without a bug passes them all.
// make test runs it: a crash test that cannot fail is worse than none.
func TestMutants(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	run := func(dir, test string) (string, error) {
		cmd := exec.Command("go", "test", "-count=1", "-timeout=300s", "-run=^"+test+"$", "./persist/")
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
			test, marker := m.test, m.marker
			if test == "" {
				test, marker = "TestDB_PowerLoss", "power loss at operation"
			}
			if m.file == "" { // the unmutated copy must pass every test the mutants use
				test = "(TestDB_PowerLoss|TestDB_PowerLossEverySec|TestDB_TornTail|TestDB_FailedWriteLeavesZeros|TestDB_FailedWriteNotResurrected)"
			}
			out, err := run(dir, test)
			switch {
			case m.file == "" && err != nil:
				t.Fatalf("the unmutated copy fails:\n%s", out)
			case m.file != "" && err == nil:
				t.Fatalf("planted bug %s went unnoticed by %s", m.name, test)
			case m.file != "" && !strings.Contains(out, marker):
				t.Fatalf("planted bug %s failed the build or the test for another reason:\n%s", m.name, out)
			}
		})
	}
}
