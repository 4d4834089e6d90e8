package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFullDisk runs the server on a 4 MiB tmpfs, fills it, and checks that
// writes are answered 507 with a problem message, reads keep working,
// nothing half-written is left, and writes resume once room is freed.
// Mounting needs root, which make test has (CI runs as root).
func TestFullDisk(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mount a 4 MiB tmpfs on %s (needs root): %v", mnt, err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })

	srv := startServer(t)
	srv.Stop()
	srv.DataDir = filepath.Join(mnt, "data")
	srv.Start()
	c := kvClient()
	if _, _, err := putKV(c, srv.URL, "before", "kept", nil); err != nil {
		t.Fatal(err)
	}
	// Fill the disk with a ballast file, leaving the log no room.
	ballast := filepath.Join(mnt, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	value := strings.Repeat("v", 8<<10)
	var status int
	for i := range 1000 {
		_, status, err = putKV(c, srv.URL, "k", value, nil)
		if err != nil {
			break
		}
		_ = i
	}
	if status != http.StatusInsufficientStorage {
		t.Fatalf("write on a full disk answered %d (%v), want 507", status, err)
	}
	if !strings.Contains(err.Error(), "space") && !strings.Contains(err.Error(), "full") {
		t.Errorf("507 answer does not say the disk is full: %v", err)
	}
	// Reads keep working.
	resp, err := c.Get(srv.URL + "/v1/kv/before")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "kept" {
		t.Fatalf("read on a full disk = %d %q", resp.StatusCode, body)
	}
	// Room freed: writes resume.
	os.Remove(ballast)
	if _, _, err := putKV(c, srv.URL, "after", "resumed", nil); err != nil {
		t.Fatalf("write after freeing room: %v", err)
	}
	// Nothing half-written: the folder reopens with every acknowledged
	// write, and recovery had no torn record to cut.
	srv.Restart()
	resp, err = c.Get(srv.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Recovery struct {
			TruncatedBytes int64 `json:"truncated_bytes"`
		} `json:"recovery"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Recovery.TruncatedBytes != 0 {
		t.Fatalf("recovery cut %d bytes of a half-written record", st.Recovery.TruncatedBytes)
	}
	for k, want := range map[string]string{"before": "kept", "after": "resumed"} {
		resp, err := c.Get(srv.URL + "/v1/kv/" + k)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Fatalf("after restart %s = %d %q, want %q", k, resp.StatusCode, body, want)
		}
	}
}
