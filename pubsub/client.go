package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tcpez/tcpez/client"
)

// Message is what a listener receives: a message published to one of its
// channels, or, with Reconnected set, word that the connection was lost
// and is back, with every channel listened to again.
type Message struct {
	Channel     string
	Data        []byte
	Reconnected bool
}

// Config configures a Client.
type Config struct {
	// OnMessage receives the messages of the channels listened to, in
	// each channel's order, one at a time: it should return quickly.
	OnMessage func(Message)
	// Client configures the connection; its OnNotify and OnStateChange are
	// the Client's, and its ConnsPerAddr is 1: subscriptions belong to a
	// connection.
	Client client.Config
}

// Client listens and publishes on one pubsub server.
type Client struct {
	c   *client.Client
	cfg Config

	mu sync.Mutex
	// listening holds the channels the application listens to: those of
	// its last Listen or Unlisten of each, under that channel's turn.
	listening map[string]bool
	// turns orders the calls on each channel, the application's and the
	// re-LISTENs after a reconnection, so that each is answered before
	// the next is sent: a multiplexed server runs a connection's calls
	// concurrently, and would otherwise take a LISTEN and an UNLISTEN
	// in either order.
	turns     map[string]*turn
	deliverMu sync.Mutex // OnMessage runs one at a time
}

// turn is the queue of the calls on one channel.
type turn struct {
	busy    bool
	waiting []chan struct{} // first come, first served
}

// acquire waits for channel's turn, in the order the callers came. It
// fails only when ctx ends first.
func (c *Client) acquire(ctx context.Context, channel string) error {
	c.mu.Lock()
	t := c.turns[channel]
	if t == nil {
		t = &turn{}
		c.turns[channel] = t
	}
	if !t.busy {
		t.busy = true
		c.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	t.waiting = append(t.waiting, w)
	c.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	for i, x := range t.waiting {
		if x == w {
			t.waiting = append(t.waiting[:i], t.waiting[i+1:]...)
			c.mu.Unlock()
			return fmt.Errorf("pubsub: call abandoned: %w", ctx.Err())
		}
	}
	c.mu.Unlock()
	// The turn was handed over meanwhile: pass it on.
	c.release(channel)
	return fmt.Errorf("pubsub: call abandoned: %w", ctx.Err())
}

// release ends the caller's turn on channel and hands it to the next.
func (c *Client) release(channel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.turns[channel]
	if len(t.waiting) == 0 {
		delete(c.turns, channel)
		return
	}
	close(t.waiting[0])
	t.waiting = t.waiting[1:]
}

// Dial connects to the Hub served at addr.
func Dial(addr string, cfg Config) (*Client, error) {
	pc := &Client{cfg: cfg, listening: make(map[string]bool), turns: make(map[string]*turn)}
	cc := cfg.Client
	cc.ConnsPerAddr = 1
	cc.OnNotify = pc.notified
	user := cc.OnStateChange
	cc.OnStateChange = func(ev client.StateEvent) {
		if user != nil {
			user(ev)
		}
		if ev.State == client.Reconnected {
			// Not on the address's goroutine, which must go on.
			go pc.relisten()
		}
	}
	cc.Protocol = client.ProtocolMux
	c, err := client.New([]string{addr}, cc)
	if err != nil {
		return nil, err
	}
	pc.c = c
	return pc, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

func (c *Client) do(ctx context.Context, cmd string) error {
	ans, err := c.c.Call(ctx, []byte(cmd))
	if err != nil {
		return err
	}
	if !bytes.Equal(ans, ok) {
		return fmt.Errorf("pubsub: %s: answered %q", strings.Fields(cmd)[0], ans)
	}
	return nil
}

func checkChannel(ch string) error {
	if ch == "" || strings.ContainsRune(ch, ' ') {
		return fmt.Errorf("%w: channel %q", ErrBadCommand, ch)
	}
	return nil
}

// Listen subscribes to channel: its messages go to OnMessage from now on,
// and the client listens on it again after a reconnection. It is sent
// once the calls on channel made before it are answered (see Unlisten).
//
// When Listen returns an error the client does not count channel as
// listened to (unless it was already): it does not listen on it again
// after a reconnection, and OnMessage gets none of its messages, so no
// Unlisten is needed. The server may still carry the LISTEN out when ctx
// ended after it was sent; the subscription may then last, unseen, as
// long as the current connection.
func (c *Client) Listen(ctx context.Context, channel string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if err := c.acquire(ctx, channel); err != nil {
		return err
	}
	defer c.release(channel)
	c.mu.Lock()
	was := c.listening[channel]
	c.listening[channel] = true
	c.mu.Unlock()
	err := c.do(ctx, "LISTEN "+channel)
	if err != nil && !was {
		c.mu.Lock()
		delete(c.listening, channel)
		c.mu.Unlock()
	}
	return err
}

// Unlisten ends the subscription to channel, once the calls on channel
// made before it (Listen, Unlisten, or the client's own LISTEN after a
// reconnection) are answered; the last of these calls made has the last
// word with the server. OnMessage gets none of its messages from then
// on, even when Unlisten returns an error (but one from ctx ending before
// its turn came, when nothing changed); the server then may go on sending
// them on the current connection, which the client drops, until the
// connection ends.
func (c *Client) Unlisten(ctx context.Context, channel string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if err := c.acquire(ctx, channel); err != nil {
		return err
	}
	defer c.release(channel)
	c.mu.Lock()
	delete(c.listening, channel)
	c.mu.Unlock()
	return c.do(ctx, "UNLISTEN "+channel)
}

// Notify publishes data to channel's listeners, this client among them
// if it listens.
func (c *Client) Notify(ctx context.Context, channel string, data []byte) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	return c.do(ctx, "NOTIFY "+channel+" "+string(data))
}

func (c *Client) notified(n client.Notification) {
	ch, data, _ := bytes.Cut(n.Payload, []byte(" "))
	c.mu.Lock()
	listened := c.listening[string(ch)]
	c.mu.Unlock()
	if !listened {
		// A channel unlistened, or whose Listen failed after the
		// server carried it out: the application wants none of it.
		return
	}
	c.deliver(Message{Channel: string(ch), Data: data})
}

func (c *Client) deliver(m Message) {
	if f := c.cfg.OnMessage; f != nil {
		c.deliverMu.Lock()
		defer c.deliverMu.Unlock()
		f(m)
	}
}

// relisten listens again on every channel after a reconnection, then
// says so.
func (c *Client) relisten() {
	c.mu.Lock()
	chans := make([]string, 0, len(c.listening))
	for ch := range c.listening {
		chans = append(chans, ch)
	}
	c.mu.Unlock()
	var err error
	for _, ch := range chans {
		err = errors.Join(err, c.relistenOne(ch))
	}
	if err != nil {
		return // the connection failed again; the next Reconnected retries
	}
	c.deliver(Message{Reconnected: true})
}

// relistenOne listens again on ch, in its turn, unless the application
// unlistened it meanwhile.
func (c *Client) relistenOne(ch string) error {
	_ = c.acquire(context.Background(), ch) // cannot fail
	defer c.release(ch)
	c.mu.Lock()
	want := c.listening[ch]
	c.mu.Unlock()
	if !want {
		return nil
	}
	return c.do(context.Background(), "LISTEN "+ch)
}
