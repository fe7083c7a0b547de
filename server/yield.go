package server

import (
	"runtime"
	"sync/atomic"
)

// awake counts a server's connections whose reader is not waiting for
// bytes: it reads, runs a handler inline or writes answers. (One whose
// reader waits while handlers it started run elsewhere does not count.)
type awake struct{ n atomic.Int64 }

// waitForBytes peeks at the next byte of the connection, of which the
// reader has nothing buffered, once the answers are written. first is
// false when the reader waits again after a deadline.
//
// Go reads a socket before it waits on it, and for a client that waits
// for each answer before it sends again that read mostly finds nothing:
// the client has barely got its answer. The read costs a system call,
// then the goroutine parks and is woken when the next request comes.
// When another connection of the server is awake, its reader or handler
// is running or ready to run: yielding to it first costs little, and
// gives a client on the same host the moments it needs to send again, so
// that the read finds its next request (see yieldPays for when not).
func (c *conn) waitForBytes(first bool) ([]byte, error) {
	if others := c.srv.awake.n.Add(-1); first && yieldPays(others, c.sinceWait) {
		runtime.Gosched()
	}
	c.sinceWait = 0
	b, err := c.r.Peek(1)
	c.srv.awake.n.Add(1)
	return b, err
}

// yieldPays reports whether a reader about to wait for bytes should yield
// first: others is how many other connections are awake, read how many
// requests it read since it last waited. Measured on 2026-12-05
// (bench/memcache: 16 memcached clients, one request each at a time, in a
// process of their own), yielding took kvcache's reads per request from
// 1.96 to about 1.7, raised its throughput by up to 15% (get of 16 B) and
// lowered its CPU per request by up to 0.9 µs. Clients in the server's
// own process share its threads, and gain nothing: 16 connections of one
// request at a time (BenchmarkEchoParallel16B) lost 2.6%.
//
// A reader alone does not yield: the runtime wakes an idle thread to look
// for the work a yield announces, and a client in the same process,
// calling alone, lost a round trip in five to the hand-offs between the
// threads. Nor does a reader that read several requests: yielding after a
// batch cost 5 to 8% to 16 connections of batches (EchoParallelBatch*), 13
// to 40% to one, whose client takes longer to send again than a yield
// lasts.
func yieldPays(others int64, read int) bool { return others > 0 && read <= 1 }
