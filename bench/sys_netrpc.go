package main

import (
	"context"
	"net"
	"net/rpc"
	"sync"
)

// netrpcSystem is the standard library's net/rpc with its gob codec: an
// rpc.Server with an Echo service, and one rpc.Client (one connection) that
// every goroutine shares; net/rpc multiplexes concurrent calls on it.
type netrpcSystem struct {
	l     net.Listener
	srv   *rpc.Server
	cl    *rpc.Client
	conns sync.WaitGroup
}

// EchoArgs and EchoReply are the gob messages: the payload as a []byte.
type EchoArgs struct{ Payload []byte }

// EchoReply is the answer of NetRPCEcho.Echo.
type EchoReply struct{ Payload []byte }

// NetRPCEcho is the net/rpc echo service (net/rpc needs it exported).
type NetRPCEcho struct{}

// Echo answers args with its own payload.
func (NetRPCEcho) Echo(args *EchoArgs, reply *EchoReply) error {
	reply.Payload = args.Payload
	return nil
}

func (s *netrpcSystem) Start() error {
	var err error
	if s.l, err = listen(); err != nil {
		return err
	}
	s.srv = rpc.NewServer()
	if err := s.srv.RegisterName("Echo", NetRPCEcho{}); err != nil {
		return err
	}
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer s.conns.Done()
				s.srv.ServeConn(c)
			}()
		}
	}()
	nc, err := dial(s.l.Addr().String())
	if err != nil {
		return err
	}
	s.cl = rpc.NewClient(nc)
	return nil
}

func (s *netrpcSystem) NewCaller() (caller, error) {
	return &netrpcCaller{cl: s.cl}, nil
}

func (s *netrpcSystem) Close() {
	if s.cl != nil {
		s.cl.Close() // the server's ServeConn ends with the connection
	}
	if s.l != nil {
		s.l.Close()
		s.conns.Wait()
	}
}

type netrpcCaller struct {
	cl *rpc.Client
}

// Call is a plain rpc.Client.Call: net/rpc knows no contexts, so ctx is not
// consulted (closing the client ends a call that hangs).
func (c *netrpcCaller) Call(_ context.Context, req []byte) (int, error) {
	var reply EchoReply
	if err := c.cl.Call("Echo.Echo", &EchoArgs{Payload: req}, &reply); err != nil {
		return 0, err
	}
	return 1, checkEcho(req, reply.Payload)
}

func (c *netrpcCaller) Close() {}
