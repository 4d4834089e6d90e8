//go:build !linux

package web_test

// sampleCPU has nothing to read outside Linux; benchmarks then report no
// CPU figures.
func sampleCPU() cpuSample { return cpuSample{} }
