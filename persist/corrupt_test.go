package persist_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/codec"
)

// image returns a memFS holding exactly files (name -> content).
func image(files map[string]string) *memFS {
	m := newMemFS()
	for name, data := range files {
		n := &node{data: []byte(data), synced: []byte(data)}
		m.files[name] = n
		m.durable[name] = n
	}
	return m
}

// folderWithLog writes n single-put records (and a snapshot when compacted
// is set, halfway) and returns the folder's files and the states after each
// revision.
func folderWithLog(t *testing.T, n int, compacted bool) (map[string]string, []map[string]engine.Entry) {
	t.Helper()
	m := newMemFS()
	db := mustOpen(t, dir, memOpts(m))
	states := []map[string]engine.Entry{{}}
	for i := range n {
		mustPut(t, db.Store(), fmt.Sprintf("key-%d", i%3), fmt.Sprintf("value-%d", i))
		states = append(states, state(t, db.Store()))
		if compacted && i == n/2 {
			if err := db.Compact(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return m.contents(), states
}

// lastSegment returns the name of the newest log segment in files.
func lastSegment(files map[string]string) string {
	last := ""
	for name := range files {
		if strings.Contains(name, "/wal-") && name > last {
			last = name
		}
	}
	return last
}

// records returns a log segment's records: its bytes without the zeros
// the log writes ahead of them.
func records(seg string) string { return strings.TrimRight(seg, "\x00") }

// zeroTail checks that seg is want followed by nothing but zeros.
func zeroTail(t *testing.T, seg, want, what string) {
	t.Helper()
	if !strings.HasPrefix(seg, want) || strings.Trim(seg[len(want):], "\x00") != "" {
		t.Fatalf("%s: the segment is not its %d bytes of records and zeros after them (%d bytes, %d of records)", what, len(want), len(seg), len(records(seg)))
	}
}

// TestDB_TornTail cuts the log at every byte of its last record, with the
// rest of the file missing (a log written before segments were
// zero-filled) or still the zeros the record was written over: each cut
// must open, with the last record gone, the cut reported, and the file
// holding whole records with only zeros after them.
func TestDB_TornTail(t *testing.T) {
	files, states := folderWithLog(t, 6, false)
	seg := lastSegment(files)
	full := files[seg]
	log := records(full)
	if len(full) == len(log) {
		t.Fatal("the log has no zeros ahead of its records")
	}
	start := strings.LastIndex(strings.TrimSuffix(log, "\n"), "\n") + 1
	for cut := start + 1; cut < len(log); cut++ {
		for _, tail := range []string{"", strings.Repeat("\x00", len(full)-cut)} {
			what := fmt.Sprintf("log cut at byte %d of %d, then %d zeros", cut, len(log), len(tail))
			f := map[string]string{seg: log[:cut] + tail}
			m := image(f)
			db, err := persist.Open(dir, memOpts(m))
			if err != nil {
				t.Fatalf("%s: Open = %v, want a torn tail cut off", what, err)
			}
			if got := state(t, db.Store()); !reflect.DeepEqual(got, states[5]) {
				t.Fatalf("%s: state %v, want the state before the last record %v", what, got, states[5])
			}
			rec := db.Status().Recovery
			if rec.TruncatedBytes != int64(cut-start) || rec.Warning == "" || rec.PossibleCorruption {
				t.Fatalf("%s: recovery report %+v, want %d bytes cut and a warning of a torn write", what, rec, cut-start)
			}
			db.Close()
			zeroTail(t, m.contents()[seg], log[:start], what)
		}
	}
	// Zeros after the last record are the end of the log, not damage.
	m := image(map[string]string{seg: log + "\x00\x00\x00\x00"})
	db, err := persist.Open(dir, memOpts(m))
	if err != nil {
		t.Fatalf("zeros after the last record: %v", err)
	}
	if got := state(t, db.Store()); !reflect.DeepEqual(got, states[6]) {
		t.Fatalf("zeros after the last record lost data: %v", got)
	}
	if rec := db.Status().Recovery; rec.TruncatedBytes != 0 || rec.Warning != "" || rec.KeptTail != "" {
		t.Fatalf("zeros after the last record: recovery %+v, want nothing cut", rec)
	}
	db.Close()
}

// TestDB_BitFlip flips every bit of a record in the middle of the log: each
// must be refused with an error naming the file and the record's offset, and
// leave every file as it was.
func TestDB_BitFlip(t *testing.T) {
	files, _ := folderWithLog(t, 5, false)
	seg := lastSegment(files)
	log := files[seg]
	lines := strings.SplitAfter(log, "\n")
	start := len(lines[0]) + len(lines[1]) // the third record of five
	end := start + len(lines[2])
	for i := start; i < end; i++ {
		for bit := range 8 {
			b := []byte(log)
			b[i] ^= 1 << bit
			m := image(map[string]string{seg: string(b)})
			before := m.contents()
			_, err := persist.Open(dir, memOpts(m))
			var ce *persist.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("bit %d of byte %d flipped: Open = %v, want a CorruptError", bit, i, err)
			}
			if ce.File != seg || ce.Offset != int64(start) {
				t.Fatalf("bit %d of byte %d flipped: error names %s at %d, want %s at %d", bit, i, ce.File, ce.Offset, seg, start)
			}
			if !reflect.DeepEqual(m.contents(), before) {
				t.Fatalf("bit %d of byte %d flipped: a refused Open changed the files", bit, i)
			}
		}
	}
}

// TestDB_CorruptSnapshot flips one bit in each byte of a snapshot: every one
// must be refused, naming the snapshot, with nothing changed.
func TestDB_CorruptSnapshot(t *testing.T) {
	files, _ := folderWithLog(t, 8, true)
	name := dir + "/snapshot.json"
	snap := files[name]
	if snap == "" {
		t.Fatal("no snapshot written")
	}
	for i := range len(snap) {
		b := []byte(snap)
		b[i] ^= 1 << (i % 8)
		f := map[string]string{}
		for k, v := range files {
			f[k] = v
		}
		f[name] = string(b)
		m := image(f)
		before := m.contents()
		_, err := persist.Open(dir, memOpts(m))
		var ce *persist.CorruptError
		if !errors.As(err, &ce) || ce.File != name {
			t.Fatalf("snapshot byte %d flipped: Open = %v, want a CorruptError naming %s", i, err, name)
		}
		if !reflect.DeepEqual(m.contents(), before) {
			t.Fatalf("snapshot byte %d flipped: a refused Open changed the files", i)
		}
	}
	// A snapshot cut short is refused too (it is never torn: it is renamed
	// into place only when complete).
	f := map[string]string{}
	for k, v := range files {
		f[k] = v
	}
	f[name] = snap[:len(snap)/2]
	if _, err := persist.Open(dir, memOpts(image(f))); err == nil {
		t.Fatal("a snapshot cut in half was accepted")
	}
}

// TestDB_Gap refuses a log that skips revisions: records lost between a
// snapshot and the log, or in the middle.
func TestDB_Gap(t *testing.T) {
	files, _ := folderWithLog(t, 5, false)
	seg := lastSegment(files)
	lines := strings.SplitAfter(files[seg], "\n")
	without := strings.Join(append(append([]string{}, lines[:2]...), lines[3:]...), "")
	_, err := persist.Open(dir, memOpts(image(map[string]string{seg: without})))
	if !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("log missing revision 3: Open = %v, want ErrCorrupt", err)
	}
	var ce *persist.CorruptError
	if !errors.As(err, &ce) || ce.Offset != int64(len(lines[0])+len(lines[1])) {
		t.Fatalf("log missing revision 3: %v, want the offset of the record after the gap", err)
	}
}

func TestDecodeRecord(t *testing.T) {
	cmd := engine.Command{Rev: 7, Changes: []engine.Change{{Op: engine.OpPut, Key: "a/ü", Value: "<1>\n", ExpiresAt: 99}, {Op: engine.OpDelete, Key: "b"}}}
	line := codec.AppendRecord(nil, &cmd)
	if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("record %q is not one line", line)
	}
	got, err := codec.DecodeRecord(line)
	if err != nil || !reflect.DeepEqual(got, cmd) {
		t.Fatalf("DecodeRecord(AppendRecord(cmd)) = %+v, %v; want %+v", got, err, cmd)
	}
	for _, bad := range []string{
		``, `{}`, `{"rev":1,"ops":[],"crc":"00000000"}`,
		strings.Replace(string(line), `"rev":7`, `"rev":8`, 1),
		`{"rev":1,"ops":[{"op":"put","key":"a"}],"crc":"zzzzzzzz"}`,
	} {
		if _, err := codec.DecodeRecord([]byte(bad)); err == nil {
			t.Errorf("DecodeRecord(%q) succeeded", bad)
		}
	}
}
