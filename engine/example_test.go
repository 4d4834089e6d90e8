package engine_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pykv/pykv/engine"
)

// A store in memory only: with no Journal in its Options nothing is
// written anywhere (persist.Open gives a durable one).
func Example() {
	s := engine.New(engine.Options{})
	defer s.Close()

	e, err := s.Put("greeting", "hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s=%s at revision %d, version %d\n", e.Key, e.Value, e.ModRev, e.Version)

	got, err := s.Get("greeting")
	fmt.Println(got.Value, err)

	_, err = s.Get("missing")
	fmt.Println(errors.Is(err, engine.ErrNotFound))
	// Output:
	// greeting=hello at revision 1, version 1
	// hello <nil>
	// true
}

// A put with a condition: IfRev is the revision the writer read the key at,
// so a write made meanwhile by someone else is not overwritten; Absent
// creates a key only if it does not exist.
func ExampleStore_Do_condition() {
	s := engine.New(engine.Options{})
	defer s.Close()

	first, _ := s.Do(engine.Op{Type: engine.OpPut, Key: "config", Value: "v1", IfRev: engine.Absent})
	fmt.Println("created at", first.ModRev)

	// Someone else changes the key...
	s.Put("config", "v2 by someone else")

	// ...so a write based on revision 1 is refused, with what was found.
	_, err := s.Do(engine.Op{Type: engine.OpPut, Key: "config", Value: "v2 by me", IfRev: first.ModRev})
	var ce *engine.ConditionError
	if errors.As(err, &ce) {
		fmt.Printf("refused: wanted revision %d, found %d (ErrConflict: %v)\n", ce.Want, ce.Have, errors.Is(err, engine.ErrConflict))
	}

	// Creating it again fails too: it exists.
	_, err = s.Do(engine.Op{Type: engine.OpPut, Key: "config", Value: "v0", IfRev: engine.Absent})
	fmt.Println(errors.Is(err, engine.ErrConflict))
	// Output:
	// created at 1
	// refused: wanted revision 1, found 2 (ErrConflict: true)
	// true
}

// A transaction moves a value from one key to another: both changes get
// one revision, and the conditions (checked against the state before it)
// make it all or nothing.
func ExampleStore_Txn() {
	s := engine.New(engine.Options{})
	defer s.Close()
	from, _ := s.Put("queue/todo/1", "write the report")

	res, err := s.Txn([]engine.Op{
		{Type: engine.OpDelete, Key: "queue/todo/1", IfRev: from.ModRev},
		{Type: engine.OpPut, Key: "queue/done/1", Value: from.Value, TTL: 24 * time.Hour, IfRev: engine.Absent},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("revision", res.Rev, "deleted", res.Results[0].Deleted, "put", res.Results[1].Entry.Value)

	// The same transaction again fails as a whole: the todo key is gone.
	_, err = s.Txn([]engine.Op{
		{Type: engine.OpDelete, Key: "queue/todo/1", IfRev: from.ModRev},
		{Type: engine.OpPut, Key: "queue/done/1", Value: from.Value, IfRev: engine.Absent},
	})
	fmt.Println(errors.Is(err, engine.ErrConflict), s.Rev())
	// Output:
	// revision 2 deleted true put write the report
	// true 2
}

// A watcher reads every change after a revision to keys under a prefix,
// in revision order: here from the current revision, so only new changes.
func ExampleStore_Watch() {
	s := engine.New(engine.Options{})
	defer s.Close()
	s.Put("users/ann", "1")

	w, err := s.Watch(s.Rev(), "users/")
	if err != nil {
		fmt.Println(err)
		return
	}
	s.Put("users/bob", "2")
	s.Put("other", "not watched")
	s.Delete("users/ann")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for seen := 0; seen < 2; {
		events, err := w.Next(ctx, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, ev := range events {
			fmt.Println(ev.Rev, ev.Type, ev.Key)
			seen++
		}
	}
	// Output:
	// 2 put users/bob
	// 4 delete users/ann
}
