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

	mu        sync.Mutex
	listening map[string]bool
	deliverMu sync.Mutex // OnMessage runs one at a time
}

// Dial connects to the Hub served at addr.
func Dial(addr string, cfg Config) (*Client, error) {
	pc := &Client{cfg: cfg, listening: make(map[string]bool)}
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
// and the client listens on it again after a reconnection.
//
// When Listen returns an error the client does not count channel as
// listened to (unless it was already): it does not listen on it again
// after a reconnection, and OnMessage gets none of its messages, so no
// Unlisten is needed. The server may still have carried the LISTEN out,
// when ctx ended after it was sent; the subscription then lasts on the
// current connection, unseen, until Unlisten or the connection ends.
func (c *Client) Listen(ctx context.Context, channel string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
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

// Unlisten ends the subscription to channel. OnMessage gets none of its
// messages from the time Unlisten is called, even when it returns an
// error; the server then may go on sending them on the current
// connection, which the client drops, until the connection ends.
func (c *Client) Unlisten(ctx context.Context, channel string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
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
		err = errors.Join(err, c.do(context.Background(), "LISTEN "+ch))
	}
	if err != nil {
		return // the connection failed again; the next Reconnected retries
	}
	c.deliver(Message{Reconnected: true})
}
