package codec

import (
	"hash/crc32"
	"time"
)

// SealSnapshotForTest ends a snapshot body (header and entry lines) with a
// valid checksum line, so fuzz tests can build snapshots around any entry.
func SealSnapshotForTest(body []byte) []byte {
	return appendCRC(append(body, ']'), crc32.Checksum(body, castagnoli))
}

// CommitDelayForTest returns what the store's committer is told about
// holding groups open (Log.CommitDelay).
func (db *DB) CommitDelayForTest() time.Duration { return db.log.CommitDelay() }
