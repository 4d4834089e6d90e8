//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

// main exists so that the package builds (and its logic is tested) on the
// host; the real entry point is in main_js.go.
func main() {
	fmt.Fprintln(os.Stderr, "pykv wasm: this program runs in a browser; build it with GOOS=js GOARCH=wasm (make wasm)")
	os.Exit(2)
}
