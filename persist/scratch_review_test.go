package persist_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

func TestReview_ReadImportHugeCountAllocates(t *testing.T) {
	body := `{"format":"pykv.snapshot","version":1,"rev":1,"count":16777216,"entries":[` + "\n" + `],"crc":"00000000"}`
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := persist.ReadImport(strings.NewReader(body))
	runtime.ReadMemStats(&after)
	t.Logf("err=%v", err)
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
		t.Errorf("a %d-byte import allocated %d MiB before being refused", len(body), d>>20)
	}
}

func TestReview_ImportFarExpiry(t *testing.T) {
	s := engine.New(engine.Options{ExpireInterval: time.Hour})
	defer s.Close()
	for _, at := range []int64{99999999999999, 20000000000000} {
		body := `{"format":"pykv.snapshot","version":1,"rev":1,"count":1,"entries":[{"key":"k","value":"v","create_rev":1,"mod_rev":1,"version":1,"expires_at":` + itoa(at) + `}]}`
		_, err := persist.ImportStore(s, bytes.NewReader([]byte(body)))
		e, gerr := s.Get("k")
		t.Logf("file expires_at=%d import err=%v; stored expires_at=%d (%v) get err=%v", at, err, e.ExpiresAt, time.UnixMilli(e.ExpiresAt).UTC(), gerr)
		if err == nil && e.ExpiresAt != at {
			t.Errorf("import changed expires_at %d to %d", at, e.ExpiresAt)
		}
	}
}

func itoa(n int64) string { return strings.TrimSpace(strings.Replace(string(rune(0)), "\x00", "", 1)) + fmtInt(n) }
func fmtInt(n int64) string {
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
