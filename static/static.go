// Package static holds the dashboard's browser assets, embedded in the
// binary. It exists because //go:embed cannot reach outside its package's
// directory; package web takes an fs.FS, so tests and development may serve
// another one.
package static

import "embed"

// FS holds the dashboard's scripts (cluster.js: its cluster panel), styles and icon, its service worker
// (sw.js, which keeps them for offline use), the offline copy's script
// (offline.js) and, under wasm/, the WebAssembly build of the engine
// that `make wasm` writes there (a build output, so a plain `go build`
// embeds only the folder's README). The server serves it under /static/.
//
//go:embed dashboard.js dashboard.css cluster.js favicon.svg offline.js sw.js wasm
var FS embed.FS
