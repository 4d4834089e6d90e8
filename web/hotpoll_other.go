//go:build !linux

package web

import (
	"sync/atomic"

	"github.com/pykv/pykv/engine"
)

// hotPoller exists only on Linux: newHotPoller returns nil elsewhere.
type hotPoller struct {
	batch  *engine.Batch
	groups atomic.Int64
}

func newHotPoller(*HotLoop) *hotPoller                 { return nil }
func (p *hotPoller) run()                              {}
func (p *hotPoller) wake()                             {}
func (p *hotPoller) adopt(*hotConn) bool               { return false }
func (p *hotPoller) commitNow()                        {}
func shutSocket(*hotConn)                              {}
func pollWrite(*hotConn, []byte) (int, error)          { return 0, nil }
func pollWritev(*hotConn, []byte, []byte) (int, error) { return 0, nil }
