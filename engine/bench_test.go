package engine_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pykv/pykv/engine"
)

// The workload of the store issue: 8 goroutines, 100k keys, 100-byte values.
const (
	benchKeys     = 100_000
	benchWorkers  = 8
	benchValueLen = 100
)

var (
	benchKeyNames = func() []string {
		ks := make([]string, benchKeys)
		for i := range ks {
			ks[i] = fmt.Sprintf("key-%07d", i)
		}
		return ks
	}()
	benchValue = strings.Repeat("v", benchValueLen)
)

// runParallel splits b.N operations over benchWorkers goroutines, each
// walking the keys from its own random start.
func runParallel(b *testing.B, op func(key string)) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := rand.IntN(benchKeys) + w
			for next.Add(1) <= int64(b.N) {
				op(benchKeyNames[i%benchKeys])
				i += 7919 // a prime stride: spread over the keys
			}
		}()
	}
	wg.Wait()
}

func filledStore(b *testing.B) *engine.Store {
	s := mustNew(b, engine.Options{})
	for _, k := range benchKeyNames {
		s.Put(k, benchValue)
	}
	return s
}

func BenchmarkStore_Put(b *testing.B) {
	s := filledStore(b)
	runParallel(b, func(k string) {
		if _, err := s.Put(k, benchValue); err != nil {
			b.Error(err)
		}
	})
}

func BenchmarkStore_Get(b *testing.B) {
	s := filledStore(b)
	runParallel(b, func(k string) {
		if _, err := s.Get(k); err != nil {
			b.Error(err)
		}
	})
}

// mapStore is the baseline the issue measures against: a bare map behind a
// RWMutex, doing nothing else.
type mapStore struct {
	mu sync.RWMutex
	m  map[string]string
}

func filledMap() *mapStore {
	ms := &mapStore{m: make(map[string]string)}
	for _, k := range benchKeyNames {
		ms.m[k] = benchValue
	}
	return ms
}

func BenchmarkBaselineMap_Put(b *testing.B) {
	ms := filledMap()
	runParallel(b, func(k string) {
		ms.mu.Lock()
		ms.m[k] = benchValue
		ms.mu.Unlock()
	})
}

func BenchmarkBaselineMap_Get(b *testing.B) {
	ms := filledMap()
	runParallel(b, func(k string) {
		ms.mu.RLock()
		_ = ms.m[k]
		ms.mu.RUnlock()
	})
}
