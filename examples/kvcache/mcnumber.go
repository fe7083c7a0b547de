package main

// memcached reads its numbers with C's strtoull and strtol, checked by its
// safe_strtoull and safe_strtol; these functions read them the same way,
// so that kvcache takes and refuses what memcached does: the counter of
// incr and decr (a value " 12\r\n" or "007" is a number to memcached),
// and the numeric arguments of commands ("+5" is 5).

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// parseCNumber reads what strtoull and strtol read: leading white space,
// an optional sign, decimal digits. It returns the digits' magnitude, the
// sign, and whether the number ends where memcached's checks want it to:
// at the end of b, a NUL or white space, with at least one digit.
func parseCNumber(b []byte) (mag uint64, neg, overflow, ok bool) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if mag > (1<<64-1-d)/10 {
			overflow = true
		}
		mag = mag*10 + d
	}
	if i == start {
		return 0, false, false, false
	}
	return mag, neg, overflow, i == len(b) || b[i] == 0 || isSpace(b[i])
}

// strtoull reads an unsigned 64-bit number as memcached's safe_strtoull:
// "-0" is 0 and "-18446744073709551615" is 1, as strtoull has them, while
// a minus that makes the number negative as a signed one is refused.
func strtoull(b []byte) (uint64, bool) {
	mag, neg, overflow, ok := parseCNumber(b)
	if !ok || overflow {
		return 0, false
	}
	if neg {
		mag = -mag
		if int64(mag) < 0 {
			return 0, false
		}
	}
	return mag, true
}

// strtol reads a signed 64-bit number as memcached's safe_strtol, but
// without its truncation to 32 bits (see README.md, Differences from
// memcached).
func strtol(b []byte) (int64, bool) {
	mag, neg, overflow, ok := parseCNumber(b)
	switch {
	case !ok:
		return 0, false
	case neg && !overflow && mag <= 1<<63:
		return -int64(mag), true
	case !neg && !overflow && mag < 1<<63:
		return int64(mag), true
	}
	return 0, false
}
