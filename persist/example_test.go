package persist_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pykv/pykv/engine"
	"github.com/pykv/pykv/persist"
)

// Open a data folder, write with a condition and in a transaction, close,
// and open it again: every acknowledged write is there. With the default
// SyncAlways each write returns only once its log record is fsynced.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "pykv-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	db, err := persist.Open(dir, persist.Options{})
	if err != nil {
		fmt.Println(err) // a *persist.CorruptError names the damaged file and offset
		return
	}
	s := db.Store()

	// A put with a condition: create the account only if it does not exist.
	acct, err := s.Do(engine.Op{Type: engine.OpPut, Key: "accounts/ann", Value: "100", IfRev: engine.Absent})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A transaction: both keys change under one revision, or neither does
	// if ann's balance changed since it was read.
	res, err := s.Txn([]engine.Op{
		{Type: engine.OpPut, Key: "accounts/ann", Value: "70", IfRev: acct.ModRev},
		{Type: engine.OpPut, Key: "accounts/bob", Value: "30", IfRev: engine.Absent},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("transaction at revision", res.Rev)
	if err := db.Close(); err != nil {
		fmt.Println(err)
		return
	}

	// Opening the folder again replays the log.
	db, err = persist.Open(dir, persist.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	for _, k := range []string{"accounts/ann", "accounts/bob"} {
		e, err := db.Store().Get(k)
		fmt.Println(k, e.Value, e.ModRev, err)
	}
	// Output:
	// transaction at revision 2
	// accounts/ann 70 2 <nil>
	// accounts/bob 30 2 <nil>
}

// A second Open of a folder in use fails at once with ErrLocked: one
// process owns a data folder.
func ExampleOpen_locked() {
	dir, err := os.MkdirTemp("", "pykv-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := persist.Open(dir, persist.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	_, err = persist.Open(dir, persist.Options{})
	fmt.Println(errors.Is(err, persist.ErrLocked))
	// Output:
	// true
}

// Watching a durable store: the events are those of writes already
// fsynced, so a watcher never sees a change a crash could take back.
func ExampleDB_Store_watch() {
	dir, err := os.MkdirTemp("", "pykv-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := persist.Open(dir, persist.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	s := db.Store()

	w, err := s.Watch(s.Rev(), "jobs/")
	if err != nil {
		fmt.Println(err)
		return
	}
	s.Put("jobs/1", "queued")
	s.Put("jobs/1", "running")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for seen := 0; seen < 2; {
		events, err := w.Next(ctx, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, ev := range events {
			fmt.Println(ev.Rev, ev.Key, ev.Entry.Value)
			seen++
		}
	}
	// Output:
	// 1 jobs/1 queued
	// 2 jobs/1 running
}
