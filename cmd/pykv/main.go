// Command pykv is PyKV's server and its command-line client.
//
//	pykv serve [flags]                 run the server
//	pykv get|put|del|ls|watch|export|import [flags] ...   talk to one
//
// Run `pykv help` for the flags and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGINT and SIGTERM cancel the context: the server stops accepting,
	// finishes requests in flight, closes the store and run returns nil.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}
