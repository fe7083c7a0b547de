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
// and is back, with every channel listened to again. The messages that
// arrived on the new connection before that follow the Reconnected
// message (see the package's doc on delivery).
type Message struct {
	Channel     string
	Data        []byte
	Reconnected bool
}

// Config configures a Client.
type Config struct {
	// OnMessage receives the messages of the channels listened to, in
	// each channel's order, one at a time: it should return quickly. It
	// runs on the goroutine that reads the connection, so it must not wait
	// for Listen, Unlisten or Notify, whose answers come on that
	// connection: call them from a goroutine of its own (from the
	// Reconnected message it is safe).
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
	turns map[string]*turn
	// From a Disconnected until the Reconnected message is delivered,
	// the messages that arrive wait in held (see holdLocked), so that none
	// of the new connection comes before the Reconnected message.
	everUp    bool
	gen       uint64 // counts the connections lost
	holding   bool
	held      []Message
	heldBytes int
	deliverMu sync.Mutex // OnMessage runs one at a time
}

// The bounds of the messages held while the client listens again after a
// reconnection. Past either, the oldest are dropped: they are lost as
// those published while the connection was down are, and what is
// delivered after the Reconnected message stays, on each channel, an
// unbroken run of its latest messages.
const (
	maxHeld      = 1024
	maxHeldBytes = 4 << 20
)

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
		gen := pc.stateChanged(ev.State)
		if user != nil {
			user(ev)
		}
		if ev.State == client.Reconnected {
			// Not on the address's goroutine, which must go on.
			go pc.relisten(gen)
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
	m := Message{Channel: string(ch), Data: data}
	c.mu.Lock()
	if !c.listening[m.Channel] {
		// A channel unlistened, or whose Listen failed after the
		// server carried it out: the application wants none of it.
		c.mu.Unlock()
		return
	}
	if c.holding {
		c.holdLocked(m)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.deliver(m)
}

// holdLocked keeps m for after the Reconnected message, within the
// bounds maxHeld and maxHeldBytes.
func (c *Client) holdLocked(m Message) {
	c.held = append(c.held, m)
	c.heldBytes += len(m.Data)
	for len(c.held) > 1 && (len(c.held) > maxHeld || c.heldBytes > maxHeldBytes) {
		c.heldBytes -= len(c.held[0].Data)
		c.held[0] = Message{}
		c.held = c.held[1:]
	}
}

// stateChanged notes a change of the connection's state, and returns the
// count of the connections lost. From a Disconnected after the first
// connection, messages are held until a relisten delivers the Reconnected
// message.
func (c *Client) stateChanged(st client.State) (gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case client.Connected:
		c.everUp = true
	case client.Disconnected:
		if c.everUp {
			c.gen++
			c.holding = true
		}
	}
	return c.gen
}

func (c *Client) deliver(m Message) {
	if f := c.cfg.OnMessage; f != nil {
		c.deliverMu.Lock()
		defer c.deliverMu.Unlock()
		f(m)
	}
}

// errStale is relisten's word that the connection was lost again.
var errStale = errors.New("pubsub: connection lost again")

// relisten listens again on every channel after the gen-th connection
// loss, then delivers the Reconnected message and the messages held
// meanwhile. The Reconnected message comes after every LISTEN, as the
// package promises "every channel listened to again", and the messages
// that came on the new connection meanwhile follow it, in the order
// they came.
func (c *Client) relisten(gen uint64) {
	c.mu.Lock()
	chans := make([]string, 0, len(c.listening))
	for ch := range c.listening {
		chans = append(chans, ch)
	}
	c.mu.Unlock()
	var err error
	for _, ch := range chans {
		if err = errors.Join(err, c.relistenOne(gen, ch)); errors.Is(err, errStale) {
			return // a later relisten does it all again
		}
	}
	switch {
	case err == nil:
		c.flush(gen, &Message{Reconnected: true})
	case errors.Is(err, client.ErrConnLost), errors.Is(err, client.ErrNoConnection),
		errors.Is(err, client.ErrClosed):
		// The connection failed again; the next Reconnected retries,
		// and the messages stay held until then.
	default:
		// The server refused a LISTEN: no Reconnected message, but the
		// messages flow again.
		c.flush(gen, nil)
	}
}

// relistenOne listens again on ch, in its turn, unless the application
// unlistened it meanwhile.
func (c *Client) relistenOne(gen uint64, ch string) error {
	_ = c.acquire(context.Background(), ch) // cannot fail
	defer c.release(ch)
	c.mu.Lock()
	want, stale := c.listening[ch], c.gen != gen
	c.mu.Unlock()
	switch {
	case stale:
		return errStale
	case !want:
		return nil
	}
	return c.do(context.Background(), "LISTEN "+ch)
}

// flush delivers first, when not nil, then the messages held, and stops
// holding them; unless the connection was lost again after the gen-th
// time, when a later relisten flushes.
func (c *Client) flush(gen uint64, first *Message) {
	f := c.cfg.OnMessage
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	if first != nil {
		c.mu.Lock()
		stale := c.gen != gen
		c.mu.Unlock()
		if stale {
			return
		}
		if f != nil {
			f(*first)
		}
	}
	for {
		c.mu.Lock()
		if c.gen != gen {
			c.mu.Unlock()
			return
		}
		if len(c.held) == 0 {
			c.holding, c.held, c.heldBytes = false, nil, 0
			c.mu.Unlock()
			return
		}
		m := c.held[0]
		c.held[0] = Message{}
		c.held = c.held[1:]
		c.heldBytes -= len(m.Data)
		listened := c.listening[m.Channel]
		c.mu.Unlock()
		if listened && f != nil {
			f(m)
		}
	}
}
