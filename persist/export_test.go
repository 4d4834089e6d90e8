package persist

import "time"

// CommitDelayForTest returns what the store's committer is told about
// holding groups open (Log.CommitDelay).
func (db *DB) CommitDelayForTest() time.Duration { return db.log.CommitDelay() }
