package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestBuild_BrowserReachesOnlyTheCodec holds the browser build to the
// layering the README promises, wasm -> persist's codec -> engine: compiled
// for GOOS=js, this package may reach no PyKV package but the engine and
// persist/codec (not persist's disk code, not web), and none of the three
// imports os, io/fs, path/filepath, syscall, os/exec or net/http itself. A
// change that pulls the disk code into the browser fails here, not in a
// browser.
func TestBuild_BrowserReachesOnlyTheCodec(t *testing.T) {
	const module = "github.com/pykv/pykv"
	allowed := []string{module + "/wasm", module + "/engine", module + "/persist/codec"}
	forbidden := []string{"os", "io/fs", "path/filepath", "syscall", "os/exec", "net/http"}

	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, ".")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps for js/wasm: %v\n%s", err, out)
	}
	reached := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		if pkg != module && !strings.HasPrefix(pkg, module+"/") {
			continue
		}
		reached[pkg] = true
		if !slices.Contains(allowed, pkg) {
			t.Errorf("the browser build reaches %s; it may reach only %v", pkg, allowed)
			continue
		}
		for _, imp := range imports {
			if slices.Contains(forbidden, imp) {
				t.Errorf("%s imports %s, which the browser build must not need", pkg, imp)
			}
		}
	}
	for _, pkg := range allowed {
		if !reached[pkg] {
			t.Errorf("go list did not report %s; is the check still looking at the browser build?", pkg)
		}
	}
}
