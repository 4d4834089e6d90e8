//go:build !unix

package persist

// lockDir does nothing where there is no flock (the browser build uses the
// codec only, never a data folder).
func lockDir(dir string) (func() error, error) { return func() error { return nil }, nil }
