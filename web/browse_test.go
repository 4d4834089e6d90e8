package web_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestKV_DeletePrefix(t *testing.T) {
	srv := mustOpenServer(t)
	for _, k := range []string{"app/a", "app/b", "app/c/d", "apple", "other"} {
		wantStatus(t, srv.do("PUT", "/v1/kv/"+k, "v"), http.StatusCreated)
	}
	store := srv.DB.Store()
	w, err := store.Watch(store.Rev(), "")
	if err != nil {
		t.Fatal(err)
	}

	wantProblem(t, srv.do("DELETE", "/v1/kv", ""), http.StatusBadRequest, "prefix", "all=true")
	wantProblem(t, srv.do("DELETE", "/v1/kv?prefix=", ""), http.StatusBadRequest, "all=true")
	wantProblem(t, srv.do("DELETE", "/v1/kv?prefix=a&all=true", ""), http.StatusBadRequest, "not both")
	wantProblem(t, srv.do("DELETE", "/v1/kv?all=yes", ""), http.StatusBadRequest, "true or false")
	wantProblem(t, srv.do("DELETE", "/v1/kv?prefix=app/", "", `If-Match: "3"`), http.StatusBadRequest, "transaction")
	if n := store.Len(); n != 5 {
		t.Fatalf("refused deletes removed keys: %d left, want 5", n)
	}

	r := srv.do("DELETE", "/v1/kv?prefix=app/", "")
	wantStatus(t, r, http.StatusOK)
	got := r.JSON(t)
	if got["deleted"] != 3.0 || got["prefix"] != "app/" || got["rev"] != 6.0 {
		t.Errorf("DELETE ?prefix=app/ = %s; want 3 deleted at rev 6", r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, err := w.Next(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want one per key removed (3)", len(evs))
	}
	for i, want := range []string{"app/a", "app/b", "app/c/d"} {
		if evs[i].Key != want || evs[i].Type != "delete" || evs[i].Rev != 6 {
			t.Errorf("event %d = %s %s at %d, want delete %s at 6", i, evs[i].Type, evs[i].Key, evs[i].Rev, want)
		}
	}
	// Nothing left to delete: 200, none, the current revision.
	r = srv.do("DELETE", "/v1/kv?prefix=app/", "")
	if got := r.JSON(t); got["deleted"] != 0.0 || got["rev"] != 6.0 {
		t.Errorf("second delete = %s; want 0 deleted at rev 6", r.Body)
	}
	r = srv.do("DELETE", "/v1/kv?all=true", "")
	if got := r.JSON(t); got["deleted"] != 2.0 || store.Len() != 0 {
		t.Errorf("DELETE ?all=true = %s with %d keys left; want 2 deleted, none left", r.Body, store.Len())
	}
}

func TestKV_Folders(t *testing.T) {
	srv := mustOpenServer(t)
	for _, k := range []string{"users/1", "users/2", "users/admins/1", "logs/2024/a", "logs/2025/b", "loose", "zz"} {
		wantStatus(t, srv.do("PUT", "/v1/kv/"+k, "v"), http.StatusCreated)
	}
	r := srv.do("GET", "/v1/folders", "")
	wantStatus(t, r, http.StatusOK)
	want := `{"prefix":"","count":7,"folders":[{"name":"logs/","keys":2},{"name":"users/","keys":3}],"more":false,"rev":7}` + "\n"
	if string(r.Body) != want {
		t.Errorf("GET /v1/folders = %s, want %s", r.Body, want)
	}
	r = srv.do("GET", "/v1/folders?prefix=users/&limit=1", "")
	want = `{"prefix":"users/","count":3,"folders":[{"name":"users/admins/","keys":1}],"more":false,"rev":7}` + "\n"
	if string(r.Body) != want {
		t.Errorf("GET /v1/folders?prefix=users/ = %s, want %s", r.Body, want)
	}
	r = srv.do("GET", "/v1/folders?limit=1", "")
	if got := r.JSON(t); got["more"] != true || got["next"] != "logs/" {
		t.Errorf("limit=1: %s; want more, next logs/", r.Body)
	}
	r = srv.do("GET", "/v1/folders?limit=1&after=logs/", "")
	if got := r.JSON(t); got["more"] != false || len(got["folders"].([]any)) != 1 {
		t.Errorf("after=logs/: %s; want users/ and no more", r.Body)
	}
	wantProblem(t, srv.do("GET", "/v1/folders?limit=-1", ""), http.StatusBadRequest, "limit")
	if got := srv.do("GET", "/v1/kv?prefix=logs/", "").JSON(t)["count"]; got != 2.0 {
		t.Errorf("listing count under logs/ = %v, want 2", got)
	}
}

func TestKV_History(t *testing.T) {
	srv := mustOpenServer(t)
	start := time.Now().UnixMilli()
	wantStatus(t, srv.do("PUT", "/v1/kv/a%2Fb", "one"), http.StatusCreated)
	wantStatus(t, srv.do("PUT", "/v1/kv/other", "x"), http.StatusCreated)
	wantStatus(t, srv.do("PUT", "/v1/kv/a%2Fb?ttl=1h", "two"), http.StatusOK)
	wantStatus(t, srv.do("DELETE", "/v1/kv/a%2Fb", ""), http.StatusOK)

	r := srv.do("GET", "/v1/history/a%2Fb", "")
	wantStatus(t, r, http.StatusOK)
	h := r.JSON(t)
	changes := h["changes"].([]any)
	var got []string
	for _, c := range changes {
		m := c.(map[string]any)
		got = append(got, fmt.Sprintf("%v %v %v", m["rev"], m["type"], m["value"]))
		if tm, _ := m["time"].(float64); int64(tm) < start || int64(tm) > time.Now().UnixMilli() {
			t.Errorf("change %v has time %v, want between the test's start and now", m["rev"], m["time"])
		}
	}
	if fmt.Sprint(got) != "[4 delete <nil> 3 put two 1 put one]" {
		t.Errorf("history of a/b = %v", got)
	}
	if m := changes[1].(map[string]any); m["version"] != 2.0 || m["expires_at"] == nil {
		t.Errorf("the second put = %v; want version 2 and its expiry", m)
	}
	if h["from"] != 0.0 || h["more"] != false || h["key"] != "a/b" {
		t.Errorf("history = %s", r.Body)
	}
	r = srv.do("GET", "/v1/history/a%2Fb?limit=1", "")
	if h := r.JSON(t); len(h["changes"].([]any)) != 1 || h["more"] != true {
		t.Errorf("limit=1: %s", r.Body)
	}
	if h := srv.do("GET", "/v1/history/never", "").JSON(t); len(h["changes"].([]any)) != 0 {
		t.Errorf("a key never written has changes: %v", h)
	}
	wantProblem(t, srv.do("GET", "/v1/history/a?limit=x", ""), http.StatusBadRequest, "limit")
}
