package engine_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
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

// runParallel runs op from benchWorkers goroutines (b.RunParallel with the
// parallelism set for that many on this machine's GOMAXPROCS), each walking
// the keys from its own random start with a prime stride.
func runParallel(b *testing.B, op func(key string)) {
	b.Helper()
	b.SetParallelism(max(1, benchWorkers/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(benchKeys)
		for pb.Next() {
			op(benchKeyNames[i%benchKeys])
			i += 7919
		}
	})
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
