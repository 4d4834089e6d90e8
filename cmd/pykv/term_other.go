//go:build !linux

package main

import (
	"io"
	"os"
)

// isTerminal reports whether w looks like a terminal: a character device.
// (Outside Linux this also takes /dev/null for one; a newline more there
// harms nothing.)
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
