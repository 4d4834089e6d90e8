package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// storage is the key-value item store the copy keeps its files in: the
// browser's localStorage, or memStorage in tests and where localStorage is
// unavailable. Sizes are counted the way browsers count them, in UTF-16 code
// units of keys plus values.
type storage interface {
	// GetItem returns the item's value and whether it exists.
	GetItem(key string) (string, bool)
	// SetItem stores value under key, replacing any old value atomically.
	// A full store returns an error wrapping errQuota and changes nothing.
	SetItem(key, value string) error
	// RemoveItem removes key; a missing key is not an error.
	RemoveItem(key string)
	// Keys returns every key the store holds (the whole origin's, not only
	// this copy's), in no particular order.
	Keys() []string
}

// errQuota is what storage.SetItem wraps when the store is full: the
// browser's QuotaExceededError.
var errQuota = errors.New("storage is full")

// jsLen returns the length of s in UTF-16 code units, as JavaScript counts it.
func jsLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n += utf16.RuneLen(r) // invalid UTF-8 decodes as U+FFFD: one unit
	}
	return n
}

// memStorage is a storage held in memory with an optional quota in UTF-16
// code units (0: unlimited). It is safe for concurrent use.
type memStorage struct {
	mu    sync.Mutex
	items map[string]string
	used  int
	quota int
}

func newMemStorage(quota int) *memStorage {
	return &memStorage{items: make(map[string]string), quota: quota}
}

func (m *memStorage) GetItem(key string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.items[key]
	return v, ok
}

func (m *memStorage) SetItem(key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	used := m.used + jsLen(key) + jsLen(value)
	if old, ok := m.items[key]; ok {
		used -= jsLen(key) + jsLen(old)
	}
	if m.quota > 0 && used > m.quota {
		return fmt.Errorf("set %s: %w (quota %d)", key, errQuota, m.quota)
	}
	m.items[key] = value
	m.used = used
	return nil
}

func (m *memStorage) RemoveItem(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.items[key]; ok {
		m.used -= jsLen(key) + jsLen(old)
		delete(m.items, key)
	}
}

func (m *memStorage) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.items))
	for k := range m.items {
		keys = append(keys, k)
	}
	return keys
}

// Usage is how much room the copy and the whole origin take in storage, in
// UTF-16 code units (browsers store two bytes per unit).
type Usage struct {
	Items      int `json:"items"`       // this copy's items
	Units      int `json:"units"`       // this copy's keys and values
	OtherItems int `json:"other_items"` // items of the origin that are not this copy's
	OtherUnits int `json:"other_units"`
	Snapshot   int `json:"snapshot_units"` // the snapshot item alone
	Log        int `json:"log_units"`      // the log items together
	LogItems   int `json:"log_items"`
	Corrupt    int `json:"corrupt_units"` // items set aside
}

// measure reads every item of st to count the room used; it is O(size of
// the origin's storage), so it runs on demand and when a write is refused.
func measure(st storage, prefix string) Usage {
	var u Usage
	keys := st.Keys()
	slices.Sort(keys)
	for _, k := range keys {
		v, _ := st.GetItem(k)
		n := jsLen(k) + jsLen(v)
		if !strings.HasPrefix(k, prefix) {
			u.OtherItems++
			u.OtherUnits += n
			continue
		}
		u.Items++
		u.Units += n
		switch rest := k[len(prefix):]; {
		case rest == keySnapshot:
			u.Snapshot += n
		case strings.HasPrefix(rest, keyLogDir):
			u.Log += n
			u.LogItems++
		case strings.HasPrefix(rest, keyCorruptDir):
			u.Corrupt += n
		}
	}
	return u
}

// QuotaError is a write refused because storage is full. Nothing of it was
// saved, in storage or in memory.
type QuotaError struct {
	What  string // the refused write, e.g. `put "a" (12 bytes)`
	Units int    // the size of what could not be stored, in UTF-16 units
	Usage Usage  // the room used when it was refused
	Err   error  // the storage's error, wrapping errQuota
}

func (e *QuotaError) Error() string {
	u := e.Usage
	return fmt.Sprintf("not saved: %s needs %s more, but local storage is full: this copy uses %s in %d items (log %s in %d items, snapshot %s), other data of this site %s; free some room and write again",
		e.What, kib(e.Units), kib(u.Units), u.Items, kib(u.Log), u.LogItems, kib(u.Snapshot), kib(u.OtherUnits))
}

func (e *QuotaError) Unwrap() error { return e.Err }

// kib formats a size in UTF-16 units as the bytes a browser stores.
func kib(units int) string {
	b := 2 * units
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", b)
}
