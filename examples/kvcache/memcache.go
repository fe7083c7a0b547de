package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/textcmd"
	"github.com/tcpez/tcpez/textcmd/textserver"
)

// memcachedVersion is what the version command answers: the memcached
// protocol level kvcache speaks, so that clients that parse it are happy.
const memcachedVersion = "1.6.0-kvcache"

// maxLine is the longest request line, a get of many keys.
const maxLine = 64 << 10

// maxItemSize is memcached's default item size, which holds the value
// with the key and a header (itemFits).
const maxItemSize = 1 << 20

// maxRelativeExptime is memcached's line between an exptime in seconds
// from now and one in Unix seconds: 30 days.
const maxRelativeExptime = 30 * 24 * 3600

// memcache serves memcached's text protocol over a Store: the commands
// get, gets, gat, gats, set, add, replace, append, prepend, cas, delete, incr, decr,
// touch, flush_all, version, stats, verbosity and quit.
type memcache struct {
	store   *Store
	journal *Journal // nil without --journal
	started time.Time

	counts counters
}

// counter is one of the statistics memcached's stats command answers,
// counted as memcached counts it.
type counter int

const (
	cmdGet       counter = iota // keys asked for by get and gets
	cmdSet                      // storage commands that got as far as storing
	cmdFlush                    // flush_all commands, even refused ones
	cmdTouch                    // touch commands, and keys of gat and gats
	getHits                     // keys of get and gets found
	getMisses                   // keys of get and gets missing
	deleteMisses                // deletes of a missing key
	deleteHits                  // deletes of a key held
	incrMisses                  // incr of a missing key
	incrHits                    // incr that counted
	decrMisses                  // decr of a missing key
	decrHits                    // decr that counted
	casMisses                   // cas of a missing key
	casHits                     // cas that stored
	casBadval                   // cas of a key changed since
	touchHits                   // touch and gat of a key held
	touchMisses                 // touch and gat of a missing key
	numCounters
)

// counterNames are in the order memcached lists them.
var counterNames = [numCounters]string{cmdGet: "cmd_get", cmdSet: "cmd_set", cmdFlush: "cmd_flush", cmdTouch: "cmd_touch",
	getHits: "get_hits", getMisses: "get_misses", deleteMisses: "delete_misses", deleteHits: "delete_hits",
	incrMisses: "incr_misses", incrHits: "incr_hits", decrMisses: "decr_misses", decrHits: "decr_hits",
	casMisses: "cas_misses", casHits: "cas_hits", casBadval: "cas_badval", touchHits: "touch_hits", touchMisses: "touch_misses"}

func (m *memcache) countCAS(res StoreResult) {
	switch res {
	case Stored:
		m.counts.add(casHits)
	case Exists:
		m.counts.add(casBadval)
	case NotFound:
		m.counts.add(casMisses)
	}
}

// count adds one to hit or to miss.
func (m *memcache) count(ok bool, hit, miss counter) { m.counts.add(pick(ok, hit, miss)) }

// pick is hit if ok, else miss.
func pick(ok bool, hit, miss counter) counter {
	if ok {
		return hit
	}
	return miss
}

var (
	clientError  = &textserver.Error{Status: "CLIENT_ERROR", Text: "bad command line format"}
	exptimeError = &textserver.Error{Status: "CLIENT_ERROR", Text: "invalid exptime argument"}
	deleteUsage  = &textserver.Error{Status: "CLIENT_ERROR", Text: "bad command line format.  Usage: delete <key> [noreply]"}
)

// newMemcacheMux registers memcached's commands.
func newMemcacheMux(store *Store, journal *Journal) *textserver.Mux {
	m := &memcache{store: store, journal: journal, started: time.Now()}
	mux := textserver.NewMux(textserver.Config{
		// Data up to twice the item limit is read and refused with an error
		// line, as memcached does; beyond, the connection is closed.
		// A client's multi-get sends every key of a server on one line:
		// 64 KiB holds 256 keys of memcached's longest, or a thousand of
		// 60 bytes. (memcached reads a get line of any length; the line
		// has to fit in the connection's read buffer here.)
		Limits: textcmd.Limits{MaxDataSize: 2 * maxItemSize, MaxLineLength: maxLine, MaxArgs: maxLine / 2},
		Replies: map[string]textserver.Reply{
			"VALUE": {CountArg: 3, Continues: true},
			"STAT":  {Continues: true},
		},
		NotFound: unknownCommand,
	})
	mux.HandleFunc("get", m.get(false), textserver.Command{MinArgs: 1})
	mux.HandleFunc("gets", m.get(true), textserver.Command{MinArgs: 1})
	// The argument counts are memcached's: a line with more or fewer is
	// answered ERROR, even with noreply. ("gat <exptime>" with no key
	// answers END.)
	mux.HandleFunc("gat", m.getAndTouch(false), textserver.Command{MinArgs: 1})
	mux.HandleFunc("gats", m.getAndTouch(true), textserver.Command{MinArgs: 1})
	for name, mode := range map[string]StoreMode{"set": ModeSet, "add": ModeAdd, "replace": ModeReplace,
		"append": ModeAppend, "prepend": ModePrepend} {
		handle(mux, name, m.storage(mode), textserver.Command{CountArg: 4, MaxArgs: 5})
	}
	handle(mux, "cas", m.storage(ModeCAS), textserver.Command{CountArg: 4, MinArgs: 5, MaxArgs: 6})
	handle(mux, "delete", m.delete, textserver.Command{MinArgs: 1, MaxArgs: 3})
	handle(mux, "incr", m.incr(false), textserver.Command{MinArgs: 2, MaxArgs: 3})
	handle(mux, "decr", m.incr(true), textserver.Command{MinArgs: 2, MaxArgs: 3})
	handle(mux, "touch", m.touch, textserver.Command{MinArgs: 2, MaxArgs: 3})
	handle(mux, "flush_all", m.flushAll, textserver.Command{MaxArgs: 2})
	mux.HandleFunc("version", func(_ context.Context, _ *textserver.Request, resp *textserver.Response) error {
		resp.Line("VERSION", memcachedVersion)
		return nil
	}, textserver.Command{})
	mux.HandleFunc("verbosity", func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		if noreply(req) {
			return nil // even "verbosity noreply", as memcached has it
		}
		if _, ok := strtoull(req.Args[0]); !ok {
			return clientError
		}
		resp.Line("OK")
		return nil
	}, textserver.Command{MinArgs: 1, MaxArgs: 2})
	mux.HandleFunc("stats", m.stats, textserver.Command{})
	mux.HandleFunc("quit", func(context.Context, *textserver.Request, *textserver.Response) error {
		return server.ErrCloseConnection
	}, textserver.Command{})
	return mux
}

// unknownCommand answers a command kvcache does not have as memcached
// does: ERROR, except that a line ending as an HTTP request's ("GET /
// HTTP/1.1") closes the connection. memcached makes that check only for
// the names it does not route by their first letter (g, s, a, c, i, d, t,
// and two-letter names starting with m), and only on lines of two letters
// or more.
func unknownCommand(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
	name, last := req.Name, req.Name
	if len(req.Args) > 0 {
		last = req.Args[len(req.Args)-1]
	}
	routed := len(name) < 2 || strings.IndexByte("gsacidt", name[0]) >= 0 || (name[0] == 'm' && len(name) == 2)
	if !routed && bytes.HasPrefix(last, []byte("HTTP/")) {
		return server.ErrCloseConnection
	}
	resp.Line("ERROR")
	return nil
}

// handle registers h, a command that takes noreply, which then gets no
// answer even when it fails, as in memcached: its client reads nothing for
// it, and would take an error line for the answer to its next command.
func handle(mux *textserver.Mux, name string, h textserver.HandlerFunc, c textserver.Command) {
	mux.HandleFunc(name, func(ctx context.Context, req *textserver.Request, resp *textserver.Response) error {
		err := h(ctx, req, resp)
		if _, status := errors.AsType[*textserver.Error](err); status && noreply(req) {
			return nil
		}
		return err
	}, c)
}

// noreply reports whether the request ends with memcached's noreply, which
// asks for no answer at all.
func noreply(req *textserver.Request) bool {
	return len(req.Args) > 0 && string(req.Args[len(req.Args)-1]) == "noreply"
}

// reply answers status unless the request asked for no answer.
func reply(req *textserver.Request, resp *textserver.Response, status string) {
	if !noreply(req) {
		resp.Line(status)
	}
}

// validKey takes the keys memcached takes: up to 250 bytes of anything
// but a space (which splits tokens), control characters and DEL
// included, as memcached does not check them. A NUL is refused: memcached
// ends the line at it, so no key of memcached's holds one.
func validKey(k []byte) bool {
	return len(k) > 0 && len(k) <= maxKeyLen && bytes.IndexByte(k, 0) < 0
}

// expires turns memcached's exptime into a Unix nanosecond expiry: 0
// never, negative already expired, up to 30 days seconds from now, else
// Unix seconds.
func (m *memcache) expires(b []byte) (int64, bool) {
	t, ok := strtol(b)
	if !ok {
		return 0, false
	}
	return m.expiry(t), true
}

func (m *memcache) expiry(t int64) int64 {
	switch {
	case t == 0:
		return 0
	case t < 0:
		return 1
	case t <= maxRelativeExptime:
		return m.store.now().UnixNano() + t*int64(time.Second)
	case t > maxExpiry/int64(time.Second):
		return maxExpiry
	}
	return t * int64(time.Second)
}

func (m *memcache) get(withCAS bool) textserver.HandlerFunc {
	return func(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
		return m.getKeys(req.Args, withCAS, resp, false, 0)
	}
}

// getAndTouch is gat and gats: "gat <exptime> <key>*" gets the keys and
// gives them a new expiry.
func (m *memcache) getAndTouch(withCAS bool) textserver.HandlerFunc {
	return func(ctx context.Context, req *textserver.Request, resp *textserver.Response) error {
		exp, ok := m.expires(req.Args[0])
		if !ok {
			return exptimeError
		}
		err := m.getKeys(req.Args[1:], withCAS, resp, true, exp)
		if err != nil {
			return err
		}
		return m.store.Durable(ctx)
	}
}

// getKeys appends a VALUE line and data block for each key held, then
// END; with touch, it gives the keys the expiry exp first.
func (m *memcache) getKeys(keys [][]byte, withCAS bool, resp *textserver.Response, touch bool, exp int64) error {
	counts := m.counts.hold()
	defer m.counts.release(counts)
	b := resp.Buffer()
	for _, key := range keys {
		if !validKey(key) {
			return clientError
		}
		answer := func(it Item) {
			// One allocation for the answer at most, rather than one per doubling.
			b = slices.Grow(b, len(key)+len(it.Value)+64)
			b = append(b, "VALUE "...)
			b = append(b, key...)
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(it.Flags), 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(len(it.Value)), 10)
			if withCAS {
				b = append(b, ' ')
				b = strconv.AppendUint(b, it.CAS, 10)
			}
			b = append(b, '\r', '\n')
			b = append(b, it.Value...)
			b = append(b, '\r', '\n')
		}
		if touch {
			counts.add(cmdTouch)
			counts.add(pick(m.store.Touch(string(key), exp, answer), touchHits, touchMisses))
		} else {
			counts.add(cmdGet)
			counts.add(pick(m.store.ViewItem(string(key), answer), getHits, getMisses))
		}
	}
	resp.SetBuffer(append(b, "END\r\n"...))
	return nil
}

var storeStatus = [...]string{Stored: "STORED", NotStored: "NOT_STORED", Exists: "EXISTS", NotFound: "NOT_FOUND"}

func (m *memcache) storage(mode StoreMode) textserver.HandlerFunc {
	return func(ctx context.Context, req *textserver.Request, resp *textserver.Response) error {
		key := req.Args[0]
		flags, okFlags := strtoull(req.Args[1])
		exp, ok := m.expires(req.Args[2])
		if !validKey(key) || !okFlags || flags > math.MaxUint32 || !ok {
			return clientError
		}
		var casID uint64
		if mode == ModeCAS {
			if casID, ok = strtoull(req.Args[4]); !ok {
				return clientError
			}
		}
		if !itemFits(len(key), uint32(flags), len(req.Data)) {
			if mode == ModeSet && m.store.Delete(string(key)) {
				// memcached drops the value the set would have replaced,
				// so that a failed set leaves no stale value behind; on
				// disk too, before the answer, with --sync always.
				if err := m.store.Durable(ctx); err != nil {
					return err
				}
			}
			return &textserver.Error{Status: "SERVER_ERROR", Text: "object too large for cache"}
		}
		m.counts.add(cmdSet)
		res := m.store.StoreItem(mode, string(key), req.Data, uint32(flags), exp, casID)
		if mode == ModeCAS {
			m.countCAS(res)
		}
		if res == Stored {
			if err := m.store.Durable(ctx); err != nil {
				return err
			}
		}
		reply(req, resp, storeStatus[res])
		return nil
	}
}

func (m *memcache) delete(ctx context.Context, req *textserver.Request, resp *textserver.Response) error {
	// memcached still takes the legacy "delete <key> 0 [noreply]".
	if n := len(req.Args); n > 1 {
		legacy := string(req.Args[1]) == "0"
		if !(n == 2 && (legacy || noreply(req)) || n == 3 && legacy && noreply(req)) {
			return deleteUsage
		}
	}
	if !validKey(req.Args[0]) {
		return clientError
	}
	deleted := m.store.Delete(string(req.Args[0]))
	m.count(deleted, deleteHits, deleteMisses)
	if !deleted {
		reply(req, resp, "NOT_FOUND")
		return nil
	}
	if err := m.store.Durable(ctx); err != nil {
		return err
	}
	reply(req, resp, "DELETED")
	return nil
}

func (m *memcache) incr(decr bool) textserver.HandlerFunc {
	return func(ctx context.Context, req *textserver.Request, resp *textserver.Response) error {
		if !validKey(req.Args[0]) {
			return clientError
		}
		delta, ok := strtoull(req.Args[1])
		if !ok {
			return &textserver.Error{Status: "CLIENT_ERROR", Text: "invalid numeric delta argument"}
		}
		n, res := m.store.IncrItem(string(req.Args[0]), delta, decr)
		if res != NotANumber {
			hit, miss := incrHits, incrMisses
			if decr {
				hit, miss = decrHits, decrMisses
			}
			m.count(res == Incremented, hit, miss)
		}
		switch res {
		case IncrNotFound:
			reply(req, resp, "NOT_FOUND")
			return nil
		case NotANumber:
			return &textserver.Error{Status: "CLIENT_ERROR", Text: "cannot increment or decrement non-numeric value"}
		}
		if err := m.store.Durable(ctx); err != nil {
			return err
		}
		if !noreply(req) {
			resp.SetBuffer(append(strconv.AppendUint(resp.Buffer(), n, 10), '\r', '\n'))
		}
		return nil
	}
}

func (m *memcache) touch(ctx context.Context, req *textserver.Request, resp *textserver.Response) error {
	if !validKey(req.Args[0]) {
		return clientError
	}
	exp, ok := m.expires(req.Args[1])
	if !ok {
		return exptimeError
	}
	m.counts.add(cmdTouch)
	touched := m.store.Touch(string(req.Args[0]), exp, nil)
	m.count(touched, touchHits, touchMisses)
	if !touched {
		reply(req, resp, "NOT_FOUND")
		return nil
	}
	if err := m.store.Durable(ctx); err != nil {
		return err
	}
	reply(req, resp, "TOUCHED")
	return nil
}

func (m *memcache) flushAll(ctx context.Context, req *textserver.Request, resp *textserver.Response) error {
	// "flush_all [delay] [noreply]": a delay of 0 or less is now, over
	// 30 days a Unix time, as an exptime.
	m.counts.add(cmdFlush)
	at := m.store.now().UnixNano()
	if len(req.Args) > 0 && !(len(req.Args) == 1 && noreply(req)) {
		delay, ok := strtol(req.Args[0])
		if !ok {
			return exptimeError
		}
		if delay > 0 {
			at = m.expiry(delay)
		}
	}
	m.store.FlushAll(at)
	if err := m.store.Durable(ctx); err != nil {
		return err
	}
	reply(req, resp, "OK")
	return nil
}

// stats answers the general statistics that memcached tools show, under
// memcached's names, and the journal's; "stats reset" zeroes the
// counters.
func (m *memcache) stats(_ context.Context, req *textserver.Request, resp *textserver.Response) error {
	// memcached reads only the subcommand: "stats reset noreply" (or with
	// any other words after) resets and answers too.
	if len(req.Args) >= 1 && string(req.Args[0]) == "reset" {
		m.counts.reset()
		resp.Line("RESET")
		return nil
	}
	if len(req.Args) > 0 {
		return &textserver.Error{Status: "ERROR"} // no sub-statistics (items, slabs, …)
	}
	now := time.Now()
	stat := func(name string, v uint64) { resp.Line("STAT", name, strconv.FormatUint(v, 10)) }
	stat("pid", uint64(os.Getpid()))
	stat("uptime", uint64(now.Sub(m.started)/time.Second))
	stat("time", uint64(now.Unix()))
	resp.Line("STAT", "version", memcachedVersion)
	for i, name := range counterNames {
		stat(name, m.counts.sum(counter(i)))
	}
	stat("curr_items", uint64(m.store.Len()))
	if m.journal != nil {
		appended, synced := m.journal.Stats()
		stat("journal_appended", appended)
		stat("journal_synced", synced)
	}
	resp.Line("END")
	return nil
}
