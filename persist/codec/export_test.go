package codec

import "hash/crc32"

// SealSnapshotForTest ends a snapshot body (header and entry lines) with a
// valid checksum line, so fuzz tests can build snapshots around any entry.
func SealSnapshotForTest(body []byte) []byte {
	return appendCRC(append(body, ']'), crc32.Checksum(body, castagnoli))
}
