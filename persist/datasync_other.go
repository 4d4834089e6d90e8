//go:build !linux

package persist

// Datasync is fsync where fdatasync is missing (macOS, the BSDs' older
// releases) or not known to make a file's size durable: fsync makes durable
// all that fdatasync does, and more.
func (f osFile) Datasync() error { return f.Sync() }
