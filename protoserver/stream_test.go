package protoserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/server"
)

// streamServer implements the Test service's streaming methods.
type streamServer struct {
	testServer
	testpb.Streams
}

// Chat echoes each request; WAIT waits for the context.
func (streamServer) Chat(s testpb.Test_ChatServer) error {
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if req.Text == "WAIT" {
			<-s.Context().Done()
			return s.Context().Err()
		}
		if err := s.Send(&testpb.EchoResponse{Data: req.Data, Text: req.Text}); err != nil {
			return err
		}
	}
}

func startStreamService(t *testing.T) testpb.TestClient {
	t.Helper()
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger()})
	testpb.RegisterTest(svc, streamServer{testServer: testServer{echo: echo}})
	_, addr := serve(t, svc, server.Config{})
	return testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{}))
}

// TestGeneratedStreams calls the generated code of the three kinds.
func TestGeneratedStreams(t *testing.T) {
	c := startStreamService(t)
	ctx := ctxFor(t)

	t.Run("server-streaming", func(t *testing.T) {
		s, err := c.Split(ctx, &testpb.EchoRequest{Data: []byte("abc")})
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for {
			m, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, m.Data...)
		}
		if string(got) != "abc" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("server-streaming failure", func(t *testing.T) {
		s, err := c.Split(ctx, &testpb.EchoRequest{Text: "no"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Recv()
		if st := wantCode(t, err, protoserver.FailedPrecondition); st.Message != "no" {
			t.Fatalf("message %q", st.Message)
		}
	})
	t.Run("client-streaming", func(t *testing.T) {
		s, err := c.Join(ctx)
		if err != nil {
			t.Fatal(err)
		}
		big := bytes.Repeat([]byte("z"), 1<<20) // chunked below the stream
		for _, p := range [][]byte{[]byte("x"), nil, big} {
			if err := s.Send(&testpb.EchoRequest{Data: p}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := s.CloseAndRecv()
		if err != nil || len(resp.Data) != 1+len(big) {
			t.Fatalf("%d bytes, %v", len(resp.GetData()), err)
		}
	})
	t.Run("bidirectional", func(t *testing.T) {
		s, err := c.Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{"one", "two"} {
			if err := s.Send(&testpb.EchoRequest{Text: text}); err != nil {
				t.Fatal(err)
			}
			m, err := s.Recv()
			if err != nil || m.Text != text {
				t.Fatalf("%v, %v", m, err)
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != io.EOF {
			t.Fatalf("after CloseSend: %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		s, err := c.Chat(cctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&testpb.EchoRequest{Text: "WAIT"}); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = s.Recv()
		wantCode(t, err, protoserver.Canceled)
	})
}

// TestStreamUnimplemented: a streaming method the server does not have,
// or a client over v1, is Unimplemented.
func TestStreamUnimplemented(t *testing.T) {
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger()})
	testpb.RegisterTest(svc, testServer{echo: echo}) // streaming methods from Unimplemented
	_, addr := serve(t, svc, server.Config{})
	c := testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{}))
	s, err := c.Chat(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	wantCode(t, err, protoserver.Unimplemented)

	v1 := testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{Protocol: client.ProtocolV1}), protoserver.ClientConfig{}))
	if _, err := v1.Join(ctxFor(t)); !errors.Is(err, client.ErrNoStreams) {
		wantCode(t, err, protoserver.Unimplemented)
	}
}

// TestStreamMessageOverServerLimit: a streamed message over the server's
// frame limit fails the call with ResourceExhausted, as a request over it
// does. Before, the handler's Recv error came back as Unknown.
func TestStreamMessageOverServerLimit(t *testing.T) {
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger()})
	testpb.RegisterTest(svc, streamServer{testServer: testServer{echo: echo}})
	_, addr := serve(t, svc, server.Config{Limits: frame.Limits{MaxFrameSize: 1 << 20}})
	c := testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{}))
	s, err := c.Join(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Send(&testpb.EchoRequest{Data: bytes.Repeat([]byte("z"), 2<<20)}) // io.EOF once the server failed the stream
	_, err = s.CloseAndRecv()
	wantCode(t, err, protoserver.ResourceExhausted)
}
