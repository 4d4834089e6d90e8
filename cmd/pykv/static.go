package main

import (
	"io/fs"

	"github.com/pykv/pykv/static"
)

// staticFS returns the dashboard's assets, embedded in the binary.
func staticFS() fs.FS { return static.FS }
