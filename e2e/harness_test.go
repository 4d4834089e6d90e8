package e2e

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// Paths relative to the repository root.
const (
	serverBinary = "bin/pykv"      // built by `make build`
	driverDir    = "e2e/.driver"   // built by `make deps`
	artifactsDir = "e2e/artifacts" // git-ignored; written only for failed tests
	chromiumPath = "/usr/bin/chromium"
)

const (
	// healthTimeout bounds how long a started server may take to answer
	// /healthz; it covers replaying a data directory, not just binding a port.
	healthTimeout = 10 * time.Second
	healthPoll    = 50 * time.Millisecond
	// stopGrace is how long the server may take to shut down after SIGTERM
	// before it is killed and the test is marked failed.
	stopGrace = 5 * time.Second
	// pageTimeout replaces Playwright's 30 s default for actions and
	// navigations: a local server answers in milliseconds, and a short
	// timeout makes a hung page fail fast with a screenshot.
	pageTimeout = 10 * time.Second
	// logTail is how much of the server log a fatal message quotes.
	logTail = 4 << 10
)

// chromiumArgs are the flags Debian's Chromium needs on these machines: as root
// it refuses to start without --no-sandbox, and without the background
// networking flags it keeps dialling hosts the closed network refuses.
var chromiumArgs = []string{
	"--no-sandbox",
	"--disable-gpu",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--no-first-run",
}

// repoRoot is the absolute path of the directory holding go.mod.
var repoRoot string

func TestMain(m *testing.M) {
	root, err := findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	repoRoot = root
	code := m.Run()
	if err := stopBrowser(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stop playwright:", err)
	}
	os.Exit(code)
}

// findRepoRoot walks up from the working directory (the package directory
// under go test) to the first directory holding go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// shared holds the one Playwright driver and Chromium of the test binary. It
// is started by the first newPage rather than in TestMain, so that runs which
// select no browser test (`go test -run='^$' -bench=. ./...`) need no browser;
// TestMain stops it after all tests have run.
var shared struct {
	once    sync.Once
	pw      *playwright.Playwright
	browser playwright.Browser
	err     error
}

// sharedBrowser returns the package's browser, starting it on first use. It
// fails the test, rather than skipping it, when the driver or Chromium is
// missing, so that a CI machine without them cannot pass.
func sharedBrowser(tb testing.TB) playwright.Browser {
	tb.Helper()
	shared.once.Do(func() {
		shared.pw, shared.browser, shared.err = startBrowser()
	})
	if shared.err != nil {
		tb.Fatalf("start browser: %v", shared.err)
	}
	return shared.browser
}

func startBrowser() (*playwright.Playwright, playwright.Browser, error) {
	dir := filepath.Join(repoRoot, driverDir)
	// Check the pieces here: playwright.Run would otherwise create an empty
	// driver folder and report a less helpful error.
	if _, err := os.Stat(filepath.Join(dir, "package", "cli.js")); err != nil {
		return nil, nil, fmt.Errorf("playwright driver %s missing: run make deps first", dir)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		return nil, nil, fmt.Errorf("%s missing: run make deps first", chromiumPath)
	}
	pw, err := playwright.Run(&playwright.RunOptions{
		DriverDirectory:     dir,
		SkipInstallBrowsers: true, // nothing may be downloaded here
	})
	if err != nil {
		return nil, nil, fmt.Errorf("run playwright driver in %s (make deps builds it): %w", dir, err)
	}
	browser, err := pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
		ExecutablePath: playwright.String(chromiumPath),
		Headless:       playwright.Bool(true),
		Args:           chromiumArgs,
	})
	if err != nil {
		_ = pw.Stop()
		return nil, nil, fmt.Errorf("launch %s: %w", chromiumPath, err)
	}
	return pw, browser, nil
}

// stopBrowser closes the browser and the driver if they were started.
func stopBrowser() error {
	if shared.pw == nil {
		return nil
	}
	return errors.Join(shared.browser.Close(), shared.pw.Stop())
}

// newPage opens a page in a fresh browser context (its own cookies and
// storage) whose base URL is srv.URL, so tests may navigate to "/path".
// Cleanup closes the context; if the test failed, it first saves a
// screenshot and the browser console to e2e/artifacts. One page per test
// keeps those names unique.
func newPage(tb testing.TB, srv *server) playwright.Page {
	tb.Helper()
	bctx, err := sharedBrowser(tb).NewContext(playwright.BrowserNewContextOptions{
		BaseURL: playwright.String(srv.URL),
	})
	if err != nil {
		tb.Fatalf("new browser context: %v", err)
	}
	bctx.SetDefaultTimeout(float64(pageTimeout.Milliseconds()))
	bctx.SetDefaultNavigationTimeout(float64(pageTimeout.Milliseconds()))

	// Console output and uncaught exceptions explain most failures of a
	// page; they arrive on the driver's goroutine.
	var (
		mu      sync.Mutex
		console strings.Builder
	)
	bctx.OnConsole(func(m playwright.ConsoleMessage) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&console, "%s: %s\n", m.Type(), m.Text())
	})
	tb.Cleanup(func() {
		if tb.Failed() {
			for _, p := range bctx.Pages() {
				png, err := p.Screenshot(playwright.PageScreenshotOptions{FullPage: playwright.Bool(true)})
				if err != nil {
					tb.Logf("screenshot: %v", err)
					continue
				}
				writeArtifact(tb, ".png", png)
				break // the first page is the test's page
			}
			mu.Lock()
			if console.Len() > 0 {
				writeArtifact(tb, ".console.log", []byte(console.String()))
			}
			mu.Unlock()
		}
		if err := bctx.Close(); err != nil {
			tb.Errorf("close browser context: %v", err)
		}
	})

	page, err := bctx.NewPage()
	if err != nil {
		tb.Fatalf("new page: %v", err)
	}
	page.OnPageError(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&console, "uncaught: %v\n", err)
	})
	return page
}

// writeArtifact saves data as e2e/artifacts/<test name><suffix>, for a human
// (or CI upload) to look at after a failure. It only logs its own errors: the
// test has already failed.
func writeArtifact(tb testing.TB, suffix string, data []byte) {
	tb.Helper()
	dir := filepath.Join(repoRoot, artifactsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Logf("save artifact: %v", err)
		return
	}
	path := filepath.Join(dir, artifactName(tb.Name())+suffix)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Logf("save artifact: %v", err)
		return
	}
	tb.Logf("saved %s", path)
}

// artifactName turns a test name such as "TestUI/put key" into a file name.
func artifactName(testName string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, testName)
}

// server is a bin/pykv process started by startServer. Its methods must be
// called from the test's goroutine.
type server struct {
	URL     string   // base URL without a trailing slash: "http://127.0.0.1:PORT"
	Addr    string   // the --addr it listens on; the same after Restart
	DataDir string   // the --data-dir; the same after Restart
	LogPath string   // stdout and stderr of every run, appended
	Args    []string // extra flags for `pykv serve`, used from the next Start on

	tb   testing.TB
	bin  string
	proc *process // nil while stopped
}

// process is one run of the server binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // cmd.Wait's result, set before done is closed
}

// startServer starts bin/pykv on a free loopback port with a fresh data
// directory and returns once GET /healthz answers 200. The server is stopped
// when the test ends; if the test failed, its log is copied to e2e/artifacts.
// It fails the test if bin/pykv is missing or the server does not come up.
// args are extra flags for `pykv serve`.
func startServer(tb testing.TB, args ...string) *server {
	tb.Helper()
	bin := filepath.Join(repoRoot, serverBinary)
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		tb.Fatalf("%s not found: run make build first", bin)
	}
	// Two directories, so the server's data directory holds only its own files.
	dataDir, logDir := tb.TempDir(), tb.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(tb)))
	s := &server{
		URL:     "http://" + addr,
		Addr:    addr,
		DataDir: dataDir,
		LogPath: filepath.Join(logDir, "server.log"),
		Args:    args,
		tb:      tb,
		bin:     bin,
	}
	// Registered after TempDir, so it runs before the directories are removed.
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			if data, err := os.ReadFile(s.LogPath); err == nil {
				writeArtifact(tb, ".log", data)
			}
		}
	})
	s.Start()
	return s
}

// freePort returns a loopback TCP port that was free a moment ago (see
// freePortOn).
func freePort(tb testing.TB) int { return freePortOn(tb, "127.0.0.1") }

// freePortOn returns a TCP port on ip that was free a moment ago, chosen
// below the kernel's ephemeral range. A port from that range (what
// listening on port 0 gives) can be taken by any outgoing connection's
// automatic local port while its server is down: a member killed and
// restarted on the same port under load then failed to start with
// "address already in use" (BenchmarkCluster's failover, 2026-12-03).
// Another process may still listen on the port first; the server then
// exits and Start fails the test, which is rare enough to accept.
func freePortOn(tb testing.TB, ip string) int {
	tb.Helper()
	lo, hi := 20000, ephemeralLow()-1
	for range 200 {
		if hi <= lo {
			break
		}
		port := lo + rand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatalf("find a free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ephemeralLow is the first port of the kernel's ephemeral range
// (Linux's default where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1024 {
		return 32768
	}
	return n
}

// Start runs the server on s.Addr and s.DataDir and waits until /healthz
// answers 200. It fails the test, quoting the server log, if the server exits
// or is not healthy within healthTimeout.
func (s *server) Start() {
	s.tb.Helper()
	if s.proc != nil {
		s.tb.Fatalf("start server: already running")
	}
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.tb.Fatalf("start server: %v", err)
	}
	args := append([]string{"serve", "--addr", s.Addr, "--data-dir", s.DataDir}, s.Args...)
	cmd := exec.Command(s.bin, args...)
	fmt.Fprintf(logf, "=== e2e: %s\n", strings.Join(cmd.Args, " "))
	// An *os.File is handed to the child as is: no copying goroutine, and
	// nothing is lost if the server dies.
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = serverSysProcAttr()
	err = cmd.Start()
	logf.Close() // the child has its own descriptor
	if err != nil {
		s.tb.Fatalf("start server: %v", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.proc = p
	if err := s.waitHealthy(); err != nil {
		s.tb.Fatalf("start server: %v\nlog %s ends:\n%s", err, s.LogPath, s.logTail())
	}
}

// waitHealthy polls /healthz until it answers 200, the process exits, or
// healthTimeout passes.
func (s *server) waitHealthy() error {
	// A transport of its own without keep-alives: no connection outlives
	// the process it was made to, whatever Restart does.
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	deadline := time.Now().Add(healthTimeout)
	var last error
	for {
		select {
		case <-s.proc.done:
			return fmt.Errorf("server exited before it was healthy: %v", s.proc.err)
		default:
		}
		resp, err := client.Get(s.URL + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %v: %w", healthTimeout, last)
		}
		time.Sleep(healthPoll)
	}
}

// Stop sends SIGTERM and waits for the server to exit. The test fails if the
// server had already exited (it crashed), exits with a non-zero status, or is
// still running after stopGrace (it is then killed). Stop on a stopped
// server does nothing.
func (s *server) Stop() {
	s.tb.Helper()
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	select {
	case <-p.done:
		s.tb.Errorf("server exited before it was stopped: %v\nlog %s ends:\n%s", p.err, s.LogPath, s.logTail())
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.tb.Errorf("stop server: %v", err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			s.tb.Errorf("server did not exit cleanly on SIGTERM: %v\nlog %s ends:\n%s", p.err, s.LogPath, s.logTail())
		}
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
		s.tb.Errorf("server still running %v after SIGTERM; killed it\nlog %s ends:\n%s", stopGrace, s.LogPath, s.logTail())
	}
}

// Kill ends the server with SIGKILL, as a crash or power cut would, and waits
// for it to exit. Kill on a stopped server does nothing.
func (s *server) Kill() {
	s.tb.Helper()
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Restart stops the server with Stop and starts it again on the same address
// and data directory.
func (s *server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.Start()
}

// logTail returns the end of the server log, for failure messages.
func (s *server) logTail() string {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	if len(data) > logTail {
		data = append([]byte("..."), data[len(data)-logTail:]...)
	}
	return string(data)
}
