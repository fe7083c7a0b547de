package textcmd

import "bytes"

// Grammar says what the bytes alone cannot: which argument of a line
// carries the byte count of the data block that follows it, and which
// response lines continue a multi-part response. The zero value is a
// protocol of lines only, each response a single line.
//
// CountArg is asked of every line a Reader reads, request or response.
// One grammar serves both directions when no status is named like a
// command, as in Memcached, whose commands are lower case and statuses
// upper case; a protocol whose statuses may share its commands' names
// reads requests with one grammar and responses with another, as
// textserver.Mux does (RequestGrammar, Grammar).
type Grammar struct {
	// CountArg returns the index, among the arguments after the name, of
	// the byte count of the data block that follows a line starting with
	// name; -1 for a line with no data block. A line too short to have
	// that argument has no data block either: its handler reports the
	// missing argument. Nil: no line has a data block.
	CountArg func(name []byte) int
	// Continues reports whether a response line starting with status is
	// one part of a multi-part response, after which more lines follow;
	// the first line for which it returns false closes the response.
	// (memcached: VALUE and STAT continue, END closes.) Nil: every
	// response is one message.
	Continues func(status []byte) bool
}

func (g Grammar) countArg(name []byte) int {
	if g.CountArg == nil {
		return -1
	}
	return g.CountArg(name)
}

func (g Grammar) continues(status []byte) bool {
	return g.Continues != nil && g.Continues(status)
}

// Message is one request, or one part of a response: a line of
// space-separated tokens, the first its Name (a command or a status), and
// the data block that follows when the line declares a byte count.
type Message struct {
	Name []byte
	Args [][]byte
	// Data is the data block, without its closing "\r\n"; nil when the
	// line declares none, non-nil (maybe empty) when it does.
	Data []byte
}

// Arg returns argument i, or nil if the line has fewer arguments.
func (m *Message) Arg(i int) []byte {
	if i < 0 || i >= len(m.Args) {
		return nil
	}
	return m.Args[i]
}

// The magic bytes that open every message of memcached's binary protocol.
const (
	binaryRequest  = 0x80
	binaryResponse = 0x81
)

// ParseLine returns the first line of buf without its line ending, and
// the bytes after it. A line ends with "\r\n" or, as memcached also
// accepts, a bare "\n". ok is false when buf holds no whole line yet. A
// line over lim.MaxLineLength is ErrLineTooLong as soon as buf holds that
// many bytes without a line ending, and one that opens with a magic byte of
// memcached's binary protocol is ErrBinaryProtocol at once.
func ParseLine(buf []byte, lim Limits) (rest, line []byte, ok bool, err error) {
	if len(buf) > 0 && (buf[0] == binaryRequest || buf[0] == binaryResponse) {
		return buf, nil, false, ErrBinaryProtocol
	}
	limit := lim.LineLimit()
	search := buf[:min(len(buf), limit)]
	i := bytes.IndexByte(search, '\n')
	if i < 0 {
		if len(buf) >= limit {
			return buf, nil, false, &SizeError{Kind: ErrLineTooLong, Limit: limit, Size: int64(limit) + 1}
		}
		return buf, nil, false, nil
	}
	line = buf[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return buf[i+1:], line, true, nil
}

// SplitLine splits line into its name and arguments, appending the
// arguments to args (pass m.Args[:0] to reuse its storage). Tokens are
// separated by one or more spaces; an empty line has an empty name.
func SplitLine(line []byte, args [][]byte, lim Limits) (name []byte, _ [][]byte, err error) {
	limit := lim.argLimit()
	first := true
	for tok, rest := nextToken(line); tok != nil; tok, rest = nextToken(rest) {
		if first {
			name, first = tok, false
			continue
		}
		if len(args) == limit {
			return name, args, &SizeError{Kind: ErrTooManyArgs, Limit: limit, Size: int64(limit) + 1}
		}
		args = append(args, tok)
	}
	if name == nil {
		name = line[:0]
	}
	return name, args, nil
}

// nextToken returns the first token of b and what follows it; tok is nil
// when b holds only spaces.
func nextToken(b []byte) (tok, rest []byte) {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	if len(b) == 0 {
		return nil, nil
	}
	// Most tokens (names, numbers, keys) are short: a plain loop finds
	// their end in fewer instructions than IndexByte takes to start.
	n := min(len(b), shortToken)
	for i := range n {
		if b[i] == ' ' {
			return b[:i], b[i:]
		}
	}
	i := -1
	if n < len(b) {
		i = bytes.IndexByte(b[n:], ' ')
	}
	if i < 0 {
		return b, nil
	}
	return b[:n+i], b[n+i:]
}

// shortToken is how far nextToken looks for a token's end byte by byte
// before it hands the search to IndexByte.
const shortToken = 8

// dataLen returns the byte count a line declares, -1 for none, checking
// the argument count on the way. It allocates nothing.
func dataLen(line []byte, g Grammar, lim Limits) (int, error) {
	name, rest := nextToken(line)
	if name == nil {
		return -1, nil
	}
	at := g.countArg(name)
	n, limit := 0, lim.argLimit()
	if len(rest) < 2*(limit+1) {
		// Every argument takes a space and a byte at least: a line this
		// short cannot have too many, and its tokens after the byte count
		// need not be read. This is the framing pass over every request.
		return countAt(rest, at, lim)
	}
	var count []byte
	for tok, r := nextToken(rest); tok != nil; tok, r = nextToken(r) {
		if n == at {
			count = tok
		}
		if n++; n > limit {
			return 0, &SizeError{Kind: ErrTooManyArgs, Limit: limit, Size: int64(n)}
		}
	}
	if count == nil {
		return -1, nil
	}
	return parseCount(count, lim)
}

// countAt returns the byte count that is argument at of args, the line
// after its name; -1 when at is negative or the line is shorter.
func countAt(args []byte, at int, lim Limits) (int, error) {
	if at < 0 {
		return -1, nil
	}
	for tok, r := nextToken(args); tok != nil; tok, r = nextToken(r) {
		if at == 0 {
			return parseCount(tok, lim)
		}
		at--
	}
	return -1, nil
}

// parseCount reads a byte count: decimal digits only, checked against the
// limit before anything is allocated for it. Leading zeros are not among
// the ten digits 2^31-1 may have: memcached reads 00000000001 as 1.
func parseCount(b []byte, lim Limits) (int, error) {
	if len(b) == 0 {
		return 0, ErrBadByteCount
	}
	digits := bytes.TrimLeft(b, "0")
	if len(digits) > 10 {
		return 0, ErrBadByteCount
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, ErrBadByteCount
		}
		n = n*10 + int64(c-'0')
	}
	if n > MaxDataSize {
		return 0, ErrBadByteCount
	}
	if limit := lim.dataLimit(); n > int64(limit) {
		return 0, &SizeError{Kind: ErrDataTooLarge, Limit: limit, Size: n}
	}
	return int(n), nil
}

// NextLen returns the length in bytes of the message at the front of buf:
// its line with the line ending, and its data block with "\r\n" when the
// line declares one. ok is false when buf does not hold the whole line
// yet; the data block need not have arrived. This is how a reader learns
// how much to read before it reads it.
func NextLen(buf []byte, g Grammar, lim Limits) (n int, ok bool, err error) {
	rest, line, ok, err := ParseLine(buf, lim)
	if !ok || err != nil {
		return 0, false, err
	}
	d, err := dataLen(line, g, lim)
	if err != nil {
		return 0, false, err
	}
	n = len(buf) - len(rest)
	if d >= 0 {
		n += d + 2
	}
	return n, true, nil
}

// ParseMessage reads one message from the front of buf into m, whose
// fields then alias buf. ok is false when buf does not hold the whole
// message yet.
func ParseMessage(buf []byte, g Grammar, lim Limits, m *Message) (rest []byte, ok bool, err error) {
	rest, line, ok, err := ParseLine(buf, lim)
	if !ok || err != nil {
		return buf, false, err
	}
	d, err := dataLen(line, g, lim)
	if err != nil {
		return buf, false, err
	}
	if m.Name, m.Args, err = SplitLine(line, m.Args[:0], lim); err != nil {
		return buf, false, err
	}
	m.Data = nil
	if d < 0 {
		return rest, true, nil
	}
	if len(rest) < d+2 {
		return buf, false, nil
	}
	if rest[d] != '\r' || rest[d+1] != '\n' {
		return buf, false, ErrBadDataEnd
	}
	m.Data = rest[:d:d]
	return rest[d+2:], true, nil
}

// ParseResponse reads one whole response from the front of buf, appending
// its messages to parts: the messages that continue it (Grammar.Continues)
// and the one that closes it, last. ok is false when buf does not hold it
// all yet.
func ParseResponse(buf []byte, g Grammar, lim Limits, parts []Message) (rest []byte, _ []Message, ok bool, err error) {
	start, limit := len(parts), lim.partLimit()
	rest = buf
	for {
		if len(parts)-start == limit {
			return buf, parts, false, &SizeError{Kind: ErrTooManyParts, Limit: limit, Size: int64(limit) + 1}
		}
		var m Message
		if rest, ok, err = ParseMessage(rest, g, lim, &m); !ok || err != nil {
			return buf, parts[:start], false, err
		}
		parts = append(parts, m)
		if !g.continues(m.Name) {
			return rest, parts, true, nil
		}
	}
}

// ValidToken reports whether b can be sent as an argument: not empty, and
// holding no space, "\r" or "\n". A name must also be a ValidName.
func ValidToken(b []byte) bool {
	return len(b) > 0 && !bytes.ContainsAny(b, " \r\n")
}

// ValidName reports whether b can be sent as the name that opens a line: a
// ValidToken whose first byte is not 0x80 or 0x81, the magic bytes of
// memcached's binary protocol, which a receiver refuses at once
// (ErrBinaryProtocol) and closes the connection on.
func ValidName(b []byte) bool {
	return ValidToken(b) && b[0] != binaryRequest && b[0] != binaryResponse
}

// AppendMessage appends the line of name and args, and data with its
// "\r\n" when data is not nil. The byte count is one of args, where the
// protocol's Grammar expects it: AppendMessage writes what it is given
// and checks nothing (Writer and the request builders check tokens).
func AppendMessage(buf, name []byte, args [][]byte, data []byte) []byte {
	buf = append(buf, name...)
	for _, a := range args {
		buf = append(buf, ' ')
		buf = append(buf, a...)
	}
	buf = append(buf, '\r', '\n')
	if data != nil {
		buf = append(buf, data...)
		buf = append(buf, '\r', '\n')
	}
	return buf
}
