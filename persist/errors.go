package persist

import "github.com/pykv/pykv/persist/codec"

// Errors describing damaged data, which Open reports wrapped in a
// *CorruptError naming the file and offset. They are the codec's own,
// named here too so that a program using persist checks them without
// importing the codec.
var (
	ErrChecksum  = codec.ErrChecksum  // a record or snapshot fails its CRC-32C
	ErrMalformed = codec.ErrMalformed // a record or snapshot is not in the format
)

// CorruptError reports damaged data: which file, at which byte offset, and
// what is wrong (errors.Is finds ErrChecksum or ErrMalformed in it). Open
// returns it and changes nothing on disk.
type CorruptError = codec.CorruptError
