// Package pubsub is publish/subscribe over tcpez's multiplexed mode, in
// the manner of Net::Clacks: clients LISTEN on named channels and every
// NOTIFY to a channel is pushed to its listeners at once, on the
// connection they listened on.
//
// Serve a Hub as a server's handler (or route its commands to it):
//
//	hub := pubsub.NewHub()
//	srv := server.New(hub, server.Config{})
//	go srv.ListenAndServe(":7070")
//	hub.Publish("news", []byte("hello")) // from the server itself
//
// and join it with Dial:
//
//	c, err := pubsub.Dial(":7070", pubsub.Config{OnMessage: func(m pubsub.Message) {
//		if m.Reconnected { /* what was sent meanwhile is lost */ }
//		fmt.Printf("%s: %s\n", m.Channel, m.Data)
//	}})
//	err = c.Listen(ctx, "news")
//	err = c.Notify(ctx, "news", []byte("hi all"))
//
// The wire is three text commands, each an ordinary call answered "OK":
// "LISTEN <channel>", "UNLISTEN <channel>" and "NOTIFY <channel> <data>";
// a notification pushed to a listener carries "<channel> <data>". Channel
// names are non-empty and hold no space.
//
// Delivery: every listener of a channel gets its messages in one order,
// the order Publish (or NOTIFY) took them; a listener that does not keep
// up loses messages rather than hold up the others (see server.Remote),
// and the server counts them as server.StatErrPushDropped. Subscriptions
// belong to a connection: when it is lost they are gone, and the client,
// once connected again, listens again on every channel it listened on and
// then delivers a Message with Reconnected set, after which messages flow
// again; those published meanwhile are lost (kvcache's channels keep a
// cursor for catching up). Messages that arrive on the new connection
// before every channel is listened to again are held and follow the
// Reconnected message, in the order they came; the client holds the
// latest 1024 of them, within 4 MiB, and drops the older ones, lost like
// those published meanwhile. Calls on one channel (Listen, Unlisten and
// the client's own re-LISTENs) take turns, so the last the application
// made has the last word.
package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// ErrBadCommand is the error of a request that is not one of the
// commands, or names no channel.
var ErrBadCommand = errors.New("pubsub: bad command")

// Hub keeps channels and their listeners. Its zero value is not usable:
// call NewHub.
type Hub struct {
	mu    sync.Mutex
	chans map[string]map[*server.Remote]struct{}
	// subs holds each remote's channels, to forget them when it goes.
	subs map[*server.Remote]map[string]struct{}
}

// NewHub returns a Hub with no channels.
func NewHub() *Hub {
	return &Hub{
		chans: make(map[string]map[*server.Remote]struct{}),
		subs:  make(map[*server.Remote]map[string]struct{}),
	}
}

var ok = []byte("OK")

// Respond serves the commands, so that a Hub is a server.Handler. LISTEN
// and UNLISTEN need a connection in the multiplexed mode, version 2.
func (h *Hub) Respond(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
	cmd, rest, _ := bytes.Cut(req, []byte(" "))
	switch string(cmd) {
	case "NOTIFY":
		ch, data, _ := bytes.Cut(rest, []byte(" "))
		if len(ch) == 0 {
			return nil, fmt.Errorf("%w: NOTIFY without a channel", ErrBadCommand)
		}
		h.Publish(string(ch), data)
		return ok, nil
	case "LISTEN", "UNLISTEN":
		if len(rest) == 0 || bytes.IndexByte(rest, ' ') >= 0 {
			return nil, fmt.Errorf("%w: %s needs one channel", ErrBadCommand, cmd)
		}
		r, isMux := server.RemoteFromContext(ctx)
		if !isMux {
			return nil, fmt.Errorf("%w: %s needs the multiplexed mode", ErrBadCommand, cmd)
		}
		if string(cmd) == "LISTEN" {
			h.Listen(r, string(rest))
		} else {
			h.Unlisten(r, string(rest))
		}
		return ok, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrBadCommand, cmd)
}

// Listen subscribes r to channel until Unlisten or r's connection ends.
func (h *Hub) Listen(r *server.Remote, channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	mine, known := h.subs[r]
	if !known {
		mine = make(map[string]struct{})
		h.subs[r] = mine
		context.AfterFunc(doneContext{r.Done()}, func() { h.forget(r) })
	}
	mine[channel] = struct{}{}
	r.KeepOpen(true) // a listener may send nothing for long
	ls := h.chans[channel]
	if ls == nil {
		ls = make(map[*server.Remote]struct{})
		h.chans[channel] = ls
	}
	ls[r] = struct{}{}
}

// Unlisten ends r's subscription to channel.
func (h *Hub) Unlisten(r *server.Remote, channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[r], channel)
	h.dropLocked(r, channel)
	if len(h.subs[r]) == 0 {
		r.KeepOpen(false)
	}
}

func (h *Hub) dropLocked(r *server.Remote, channel string) {
	ls := h.chans[channel]
	delete(ls, r)
	if len(ls) == 0 {
		delete(h.chans, channel)
	}
}

// forget drops every subscription of a remote whose connection ended.
func (h *Hub) forget(r *server.Remote) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[r] {
		h.dropLocked(r, ch)
	}
	delete(h.subs, r)
}

// Listeners returns how many remotes listen on channel.
func (h *Hub) Listeners(channel string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.chans[channel])
}

// Publish pushes data to every listener of channel, never waiting for one,
// and says how many it was queued for and how many dropped it. Publishes
// to a channel are taken one at a time, so all its listeners see them in
// the same order.
func (h *Hub) Publish(channel string, data []byte) (sent, dropped int) {
	msg := make([]byte, 0, len(channel)+1+len(data))
	msg = append(append(append(msg, channel...), ' '), data...)
	h.mu.Lock()
	defer h.mu.Unlock()
	for r := range h.chans[channel] {
		if r.Notify(msg) == nil {
			sent++
		} else {
			dropped++
		}
	}
	return sent, dropped
}

// doneContext is a context that ends when done is closed, so that
// context.AfterFunc can watch a Remote.
type doneContext struct{ done <-chan struct{} }

func (d doneContext) Deadline() (deadline time.Time, ok bool) { return }
func (d doneContext) Done() <-chan struct{}                   { return d.done }
func (d doneContext) Value(any) any                           { return nil }
func (d doneContext) Err() error {
	select {
	case <-d.done:
		return context.Canceled
	default:
		return nil
	}
}
