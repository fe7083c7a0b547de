package client

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/stream"
)

// TestStreamSendWaitsForTheWriter: a server that grants two streams all
// the credit the protocol allows and reads slowly gets no more of the
// client's memory than a chunk or so queued behind the write in progress.
// Before, the stream whose small sends found another goroutine writing
// queued them all in the connection's buffer, whatever their total.
func TestStreamSendWaitsForTheWriter(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second)) // a safety net, not a timing
		r := frame.NewReader(nc, frame.Limits{})
		if _, err := r.ReadFrame(nil); err != nil { // the preface
			return
		}
		if _, err := nc.Write(frame.AppendAck(nil, frame.Ack{Version: frame.MuxVersion, MaxInFlight: 128, MaxFrameSize: frame.DefaultMaxFrameSize})); err != nil {
			return
		}
		for opened := 0; ; {
			p, err := r.ReadFrame(nil)
			if err != nil {
				return
			}
			f, err := frame.ParseMuxPayload(p)
			if err != nil {
				return
			}
			switch f.Kind {
			case frame.KindOpen:
				opened++
				if _, err := nc.Write(frame.AppendWindow(nil, f.ID, 1<<31-1-frame.StreamWindow)); err != nil {
					return
				}
			case frame.KindEnd:
				if opened--; opened == 0 {
					return
				}
			}
		}
	}()

	c, err := New([]string{l.Addr().String()}, Config{Protocol: ProtocolMux, ConnsPerAddr: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	most := 0
	var wg sync.WaitGroup
	for range 2 {
		s, err := c.Stream(ctx, []byte("pump"))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			msg := make([]byte, 1<<10)
			for range 16 << 10 { // 16 MiB
				if err := s.Send(msg); err != nil {
					t.Error(err)
					return
				}
				s.cn.mu.Lock()
				queued := len(s.cn.out.buf)
				s.cn.mu.Unlock()
				mu.Lock()
				most = max(most, queued)
				mu.Unlock()
			}
			_ = s.CloseSend()
		})
	}
	wg.Wait()
	<-served
	// Each stream may queue a chunk behind the write in progress.
	if bound := 2 * (stream.MaxChunk + frame.HeaderSize + frame.MuxHeaderSize); most > bound {
		t.Fatalf("%d bytes queued at most, want at most %d", most, bound)
	}
}
