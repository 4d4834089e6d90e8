package engine

import (
	"strings"
)

// Folder is one next level of keys under a prefix when "/" is read as a
// folder separator: every key starting with Name (which ends in "/").
type Folder struct {
	Name string `json:"name"` // the prefix of the folder's keys, ending in "/"
	Keys int    `json:"keys"` // how many keys start with Name
}

// Count returns how many keys start with prefix, in O(log² n) whatever the
// number of keys: it ranks the prefix's first and last possible key in the
// ordered index rather than visiting the keys. Keys whose TTL ran out but
// that the background expiry has not removed yet (it runs every
// Options.ExpireInterval) are counted too, as Len counts them.
func (s *Store) Count(prefix string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.countLocked(prefix)
}

func (s *Store) countLocked(prefix string) int {
	if prefix == "" {
		return s.index.Len()
	}
	lo := s.rank(prefix)
	if end, ok := prefixEnd(prefix); ok {
		return s.rank(end) - lo
	}
	return s.index.Len() - lo
}

// rank returns the number of indexed keys less than key, by binary search
// over the counted tree's positions (GetAt is O(log n)).
func (s *Store) rank(key string) int {
	lo, hi := 0, s.index.Len()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		k, _ := s.index.GetAt(mid)
		if k < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// prefixEnd returns the smallest string greater than every string that
// starts with prefix, or false when there is none (prefix is all 0xff bytes,
// which valid UTF-8 keys never hold).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Folders returns the next level of "folders" under prefix, in key order:
// for every key prefix+"a/…" the folder prefix+"a/" with the number of keys
// in it. It starts after the folder named after (a cursor, "" for the
// first) and returns at most limit folders (0 or less: no limit). The cost
// does not grow with the keys inside folders: each folder is counted with
// Count and then jumped over. Keys directly under prefix (no further "/")
// are stepped over one by one, at most maxSteps of them (0 or less: no
// bound); more reports that folders may remain, after the last one returned
// or, if the steps ran out, after the key next names.
//
// The listing and the counts are of one moment: rev is the revision they show.
func (s *Store) Folders(prefix, after string, limit, maxSteps int) (folders []Folder, more bool, next string, rev int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rev = s.rev
	pos := prefix
	switch {
	case after == "" || after < prefix:
	case strings.HasSuffix(after, "/") && after != prefix:
		// after is a folder: go past every key in it.
		end, ok := prefixEnd(after)
		if !ok {
			return nil, false, "", rev
		}
		pos = end
	default:
		// after is a loose key where the steps ran out: go on right after
		// it (a folder after+"/…" may still follow).
		pos = after + "\x00"
	}
	steps := 0
	for {
		k, ok := s.first(pos)
		if !ok || !strings.HasPrefix(k, prefix) {
			return folders, false, "", rev
		}
		rest := k[len(prefix):]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			// A key directly under prefix: step over it.
			steps++
			if maxSteps > 0 && steps > maxSteps {
				return folders, true, k, rev
			}
			pos = k + "\x00"
			continue
		}
		if limit > 0 && len(folders) == limit {
			return folders, true, folders[len(folders)-1].Name, rev
		}
		name := k[:len(prefix)+slash+1]
		folders = append(folders, Folder{Name: name, Keys: s.countLocked(name)})
		end, ok := prefixEnd(name)
		if !ok {
			return folders, false, "", rev
		}
		pos = end
	}
}

// first returns the first indexed key at or after pos.
func (s *Store) first(pos string) (key string, ok bool) {
	s.index.Ascend(pos, func(k string) bool {
		key, ok = k, true
		return false
	})
	return key, ok
}

// KeyRevision is one change of a key as the change feed still holds it.
type KeyRevision struct {
	Type ChangeType // OpPut, OpDelete or OpExpire
	Rev  int64
	// Entry is the key's entry after a put (value, version, expiry); nil
	// for a delete or expiry.
	Entry *Entry
	// Time is when this store applied the change, in Unix milliseconds, or
	// 0 when it is not known: changes replayed from the log at start-up or
	// applied from another member carry no time.
	Time int64
}

// History returns the changes of key the change feed still holds, newest
// first, at most limit of them (0 or less: all held). The feed keeps only
// the most recent Options.History events (and HistoryBytes), and starts
// afresh from a snapshot at start-up, so a key may have had changes older
// than those returned: from is the revision after which the feed holds
// every change (0: all since the store began), so a caller can say "no
// change of this key after revision from is missing". more reports that
// limit cut the list. It visits each held event once under the shared lock.
func (s *Store) History(key string, limit int) (revs []KeyRevision, more bool, from int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f := &s.feed
	for seq := f.next - 1; seq >= f.first; seq-- {
		ev := f.at(seq)
		if ev.Key != key {
			continue
		}
		if limit > 0 && len(revs) == limit {
			return revs, true, f.compacted
		}
		revs = append(revs, KeyRevision{Type: ev.Type, Rev: ev.Rev, Entry: ev.Entry, Time: ev.Time})
	}
	return revs, false, f.compacted
}
