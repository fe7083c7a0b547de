package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// TestImpossibleAcknowledgementRefused checks that an acknowledgement no
// tcpez server sends (a version above the one asked for, which the server
// must not pick; frames too small to hold a mux header) fails the
// negotiation. The client took them: against the first it would send
// frames of a version it never agreed on, and against the second every
// call failed with "frame of 2 bytes exceeds the limit of -1".
func TestImpossibleAcknowledgementRefused(t *testing.T) {
	for name, ack := range map[string]frame.Ack{
		"version above the preface's":  {Version: frame.MuxVersion + 1, MaxInFlight: 8, MaxFrameSize: 1 << 20},
		"frames shorter than a header": {Version: frame.MuxVersion, MaxInFlight: 8, MaxFrameSize: frame.MuxHeaderSize - 1},
	} {
		addr := rawMuxServer(t, ackWith(ack), func(frame.MuxFrame) []byte { return nil })
		c, err := client.New([]string{addr}, client.Config{Protocol: client.ProtocolMux, DialTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		_, err = c.Call(ctx, []byte("x"))
		cancel()
		c.Close()
		if !errors.Is(err, client.ErrMuxRefused) || !errors.Is(err, frame.ErrProtocol) {
			t.Errorf("%s: %v, want ErrMuxRefused matching frame.ErrProtocol", name, err)
		}
	}
}
