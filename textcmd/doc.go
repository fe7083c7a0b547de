// Package textcmd is the wire codec of text command protocols in the style
// of memcached and MindTouch.Clacks: a request is a line
//
//	NAME ARG ARG ...\r\n
//
// followed, when the command declares a byte count in one of its
// arguments, by that many bytes of data and "\r\n". A response has the same
// shape, its first token a status; a multi-part response (memcached's
// "get k1 k2": VALUE lines with their data, closed by END) is a run of such
// messages closed by a line that does not continue it. docs/TEXTPROTOCOL.md
// is the full specification, with byte examples the tests check.
//
// Which argument carries the byte count, and which response lines continue
// a response, is not in the bytes: a Grammar says it for each protocol.
//
//	g := textcmd.Grammar{CountArg: func(name []byte) int {
//		if string(name) == "set" {
//			return 3 // set <key> <flags> <exptime> <bytes> [noreply]
//		}
//		return -1
//	}}
//	rest, ok, err := textcmd.ParseMessage(buf, g, textcmd.Limits{}, &m)
//
// The package has two layers, as package frame has. Pure functions
// (ParseLine, ParseMessage, ParseResponse, AppendMessage, NextLen) decode
// and encode messages held in memory. Reader and Writer put a buffer under
// them; Reader reads through a *frame.Reader, so that a server or client
// built on the tcpez connection machinery shares its buffers, its burst
// pool and its deadlines.
//
// Every size a peer announces or sends — a line, the number of arguments, a
// data block, the number of parts of a response — is checked against
// Limits before memory is taken for it. Input that breaks the protocol is
// an error matching ErrProtocol; the connection is then out of sync and
// must be closed. So is a read error (a deadline) that cuts a message a
// Reader has begun to consume, reported as ErrTruncated; one that comes
// before any of it is consumed passes as it is, and the Reader can read
// on later.
//
// The name is textcmd, not textproto, so that it does not shadow
// net/textproto, whose dot-terminated MIME-style blocks are another
// protocol family.
package textcmd
