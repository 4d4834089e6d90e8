package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair: what is written to tty is read
// from ptm, as a terminal emulator would read it.
func openPty(t *testing.T) (ptm, tty *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptm, tty
}

// TestClient_GetNewlineOnTerminal: pykv get ends the value with a newline
// on a terminal, and writes the bytes exactly into a pipe or file.
func TestClient_GetNewlineOnTerminal(t *testing.T) {
	srv := startServe(t, t.TempDir(), nil)
	if _, errOut, code := pykv(t, srv, "", "put", "k", "no newline"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	if _, errOut, code := pykv(t, srv, "", "put", "nl", "ends\n"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	ptm, tty := openPty(t)
	if !isTerminal(tty) {
		t.Fatal("isTerminal(pty) = false")
	}
	env := mapEnv(map[string]string{"PYKV_SERVER": srv.URL})
	for _, key := range []string{"k", "nl"} {
		var errb bytes.Buffer
		if err := run(context.Background(), []string{"get", key}, env, strings.NewReader(""), tty, &errb); err != nil {
			t.Fatalf("get %s on a terminal: %v %s", key, err, errb.String())
		}
	}
	// The terminal turns "\n" into "\r\n" on the way out.
	want := "no newline\r\nends\r\n"
	got := make([]byte, 0, len(want))
	buf := make([]byte, 64)
	if err := ptm.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Skipf("pty without deadlines: %v", err)
	}
	for len(got) < len(want) {
		n, err := ptm.Read(buf)
		if err != nil {
			t.Fatalf("read terminal after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Errorf("terminal shows %q, want %q (one newline added, none doubled)", got, want)
	}

	// Into a file: the value's bytes, nothing added.
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("isTerminal(regular file) = true")
	}
	if err := run(context.Background(), []string{"get", "k"}, env, strings.NewReader(""), f, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(f.Name()); string(data) != "no newline" {
		t.Errorf("get into a file wrote %q, want the value exactly", data)
	}
}
