//go:build linux

package web_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sampleCPU reads the CPU time this process has used (user and system,
// from getrusage) and the machine's busy and total time (from /proc/stat:
// busy is user, nice, system, irq and softirq; total adds idle, iowait and
// steal). Kernel threads, such as the file system's journal, and interrupt
// handling show only in the machine's figures, which also count any other
// load on the machine, in 10 ms ticks: meaningful for runs of a second or
// more.
func sampleCPU() cpuSample {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSample{}
	}
	s := cpuSample{proc: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ok: true}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	var v [8]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return s
		}
	}
	// user nice system idle iowait irq softirq steal
	s.busy = v[0] + v[1] + v[2] + v[5] + v[6]
	s.total = s.busy + v[3] + v[4] + v[7]
	return s
}
