package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes, for scripts.
const (
	exitOK          = 0
	exitFailure     = 1 // anything else: server error, network, bad data
	exitUsage       = 2 // wrong flags or arguments
	exitNotFound    = 3 // get or del of a key that does not exist
	exitConflict    = 4 // a condition (--if-rev, --if-absent) did not hold
	exitUnavailable = 5 // no server answered at --server, or it refuses writes
	exitAuth        = 6 // the server wants a (different) token
)

// exitError carries the exit code an error ends the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError reports wrong arguments: exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// exitCode prints err (if any) and returns the code to exit with.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintln(stderr, "pykv:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

const usage = `PyKV: a durable key-value store with an HTTP API.

Usage:
  pykv serve [flags]              run the server (pykv serve -h for its flags)
  pykv get KEY                    print a key's value (a newline added on a terminal)
  pykv put KEY [VALUE]            set a key (the value from stdin when not given)
  pykv del KEY                    delete a key
  pykv del --prefix PREFIX        delete every key under PREFIX at one revision (--all: every key)
  pykv ls [PREFIX]                list keys in order (--values: key<TAB>value, quoted if
                                  they hold a tab, newline or leading ")
  pykv watch [PREFIX]             print changes as they happen, one JSON line each
  pykv export [FILE]              save the whole store (snapshot JSON) to FILE or stdout
  pykv import [--replace] [FILE]  load a snapshot or a flat {"key":"value"} file (merged;
                                  --replace also deletes the keys it does not hold)
  pykv cluster members            list a cluster's members, the leader and each one's revision
  pykv cluster remove ID          take member ID out of the cluster
  pykv help                       this text

Client commands take --server URL (env PYKV_SERVER, default http://127.0.0.1:8080)
and --token TOKEN (env PYKV_TOKEN); run "pykv CMD -h" for the others.

Exit codes: 0 success, 1 failure, 2 usage, 3 key not found, 4 condition failed,
5 server unreachable or refusing writes, 6 token missing or not allowed.
`

// run is the whole program: main only adds the process's signals,
// environment and standard streams, so tests call run directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{exitUsage, errors.New("no command given")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "get", "put", "del", "delete", "ls", "list", "watch", "export", "import", "cluster":
		return client(ctx, cmd, rest, getenv, stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError("unknown command %q", cmd)
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("pykv "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args after taking each flag's default from the
// environment variable PYKV_<NAME> (dashes as underscores): the command
// line wins over the environment, which wins over the default.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "PYKV_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = usageError("environment %s=%q: %v", name, redact(f.Name, v), err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{exitUsage, err}
	}
	return nil
}

// redact hides the value of a secret flag in messages.
func redact(name, v string) string {
	if strings.Contains(name, "token") {
		return "(hidden)"
	}
	return v
}
