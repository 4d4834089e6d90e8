package codec

import "strconv"

// The field writers below are the one place each field of PyKV's
// hand-written JSON is named and spelled. The four encoders written by hand
// for speed (log records, snapshot entries, the watch stream's events and
// the browser copy's sync item) all write their fields through them, so a
// field cannot drift apart between them: its name, how its value is
// spelled, and when it is left out are decided here.
//
// Each writer appends sep (the '{' opening an object or the ',' between two
// fields), the field's name and its value, as encoding/json would spell
// them. escapeHTML chooses between the files' spelling of strings (true,
// Marshal's default) and the API's (false); see AppendJSONString.

// AppendStringField appends sep, "name": and s as a JSON string. name is
// written as it is: it must be a plain field name with nothing to escape.
// The fields the encoders share have writers of their own below.
func AppendStringField(dst []byte, sep byte, name, s string, escapeHTML bool) []byte {
	dst = appendName(dst, sep, name)
	return AppendJSONString(dst, s, escapeHTML)
}

// AppendIntField appends sep, "name": and n. name is written as it is.
func AppendIntField(dst []byte, sep byte, name string, n int64) []byte {
	dst = appendName(dst, sep, name)
	return strconv.AppendInt(dst, n, 10)
}

func appendName(dst []byte, sep byte, name string) []byte {
	dst = append(dst, sep, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

// named appends sep and a field's name, quoted and with its colon. The
// writers below pass a constant starting with a placeholder byte, `,"key":`,
// appended in one copy with sep written over the placeholder: a record or
// an event is a handful of fields, and one append fewer per field shows.
func named(dst []byte, sep byte, field string) []byte {
	dst = append(dst, field...)
	dst[len(dst)-len(field)] = sep
	return dst
}

// AppendKey appends the "key" field.
func AppendKey(dst []byte, sep byte, key string, escapeHTML bool) []byte {
	return AppendJSONString(named(dst, sep, `,"key":`), key, escapeHTML)
}

// AppendValue appends the "value" field.
func AppendValue(dst []byte, sep byte, value string, escapeHTML bool) []byte {
	return AppendJSONString(named(dst, sep, `,"value":`), value, escapeHTML)
}

// AppendRev appends the "rev" field: the revision of a record, an event or
// a message.
func AppendRev(dst []byte, sep byte, rev int64) []byte {
	return strconv.AppendInt(named(dst, sep, `,"rev":`), rev, 10)
}

// AppendCreateRev appends the "create_rev" field: the revision that created
// the key.
func AppendCreateRev(dst []byte, sep byte, rev int64) []byte {
	return strconv.AppendInt(named(dst, sep, `,"create_rev":`), rev, 10)
}

// AppendModRev appends the "mod_rev" field: the revision of the key's last
// change.
func AppendModRev(dst []byte, sep byte, rev int64) []byte {
	return strconv.AppendInt(named(dst, sep, `,"mod_rev":`), rev, 10)
}

// AppendVersion appends the "version" field: the number of puts since the
// key was created.
func AppendVersion(dst []byte, sep byte, version int64) []byte {
	return strconv.AppendInt(named(dst, sep, `,"version":`), version, 10)
}

// AppendExpiresAt appends the "expires_at" field (Unix milliseconds), and
// nothing at all, sep included, when ms is 0: the field is omitted for a
// key that does not expire (omitempty).
func AppendExpiresAt(dst []byte, sep byte, ms int64) []byte {
	if ms == 0 {
		return dst
	}
	return strconv.AppendInt(named(dst, sep, `,"expires_at":`), ms, 10)
}
