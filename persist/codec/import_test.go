package codec_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist/codec"
)

// Review: ReadSnapshot preallocates min(count, 1<<24) entries from the
// unchecked header, so a ~100-byte import body (or a flipped digit in a
// snapshot header) allocates 1 GiB before the checksum is even looked at.
func TestReadImport_HugeCountDoesNotAllocate(t *testing.T) {
	body := `{"format":"pykv.snapshot","version":1,"rev":1,"count":16777216,"entries":[` + "\n" + `],"crc":"00000000"}`
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := codec.ReadImport(strings.NewReader(body))
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("import accepted")
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
		t.Errorf("a %d-byte import allocated %d MiB before being refused (%v)", len(body), d>>20, err)
	}
}

// Review: ImportStore turns expires_at into a TTL with
// time.Duration(ms)*time.Millisecond, which overflows for expiry times more
// than ~292 years ahead: the key is silently given another expiry, or the
// whole import is refused with "ttl must not be negative".
func TestImport_FarExpiry(t *testing.T) {
	for _, at := range []int64{99_999_999_999_999, 20_000_000_000_000} {
		s := engine.New(engine.Options{ExpireInterval: time.Hour})
		var body strings.Builder
		if err := codec.WriteSnapshot(&body, 1, []*engine.Entry{{Key: "k", Value: "v", CreateRev: 1, ModRev: 1, Version: 1, ExpiresAt: at}}); err != nil {
			t.Fatal(err)
		}
		_, err := codec.ImportStore(s, strings.NewReader(body.String()), codec.ImportMerge)
		e, _ := s.Get("k")
		s.Close()
		if err != nil {
			t.Errorf("expires_at %d: import refused: %v", at, err)
		} else if e.ExpiresAt != at {
			t.Errorf("expires_at %d imported as %d (%v)", at, e.ExpiresAt, time.UnixMilli(e.ExpiresAt).UTC())
		}
	}
}
