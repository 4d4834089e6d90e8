//go:build !linux

package cluster

import (
	"errors"
	"os"
)

// holesReported: boltStore fills holes only where Linux reports them.
const holesReported = false

var errNoHoles = errors.New("holes are not reported here")

func seekHole(*os.File, int64) (int64, error) { return 0, errNoHoles }
func seekData(*os.File, int64) (int64, error) { return 0, errNoHoles }
func datasync(f *os.File) error               { return f.Sync() }
