// Package e2e holds PyKV's end-to-end tests: they start the real server
// binary and drive it from a real browser.
//
// # Basics
//
// The tests run bin/pykv as a separate process, one per test, on a free
// loopback port with a fresh data directory, and drive Debian's Chromium
// through Playwright. `make test` prepares everything they need; by hand:
//
//	make deps build
//	go test -race -count=1 ./e2e/
//
// startServer starts the server and stops it when the test ends; newPage
// opens a fresh browser context on it. A failing test leaves its screenshot,
// browser console and server log in e2e/artifacts.
//
// startCluster (cluster_test.go) starts three members whose raft links go
// through proxies the test controls (faultNet: cut both ways or one way,
// heal); TestClusterFaults drives the faults and checks the histories.
// BenchmarkCluster (make bench-cluster) runs three members beside a
// three-member etcd.
//
// # Caveats
//
// Missing pieces fail the tests rather than skip them, so a broken CI machine
// cannot pass silently: bin/pykv comes from `make build`; the driver folder
// e2e/.driver and /usr/bin/chromium come from `make deps`. The playwright-go
// module version (go.mod) and the playwright-core npm version
// (package-lock.json) must be bumped together: playwright-go refuses any
// driver but the one it was built for.
//
// Use -count=1: the Go test cache does not know that the tests depend on
// bin/pykv, so a cached pass may describe an older binary.
package e2e
