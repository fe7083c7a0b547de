package testpb

import (
	"io"

	"github.com/tcpez/tcpez/protoserver"
)

// Streams implements Split and Join for the tests that serve Test; embed
// it next to UnimplementedTestServer.
type Streams struct{}

// Split sends req.Data back a byte at a time, or fails
// FailedPrecondition with req.Text.
func (Streams) Split(req *EchoRequest, s Test_SplitServer) error {
	if req.Text != "" {
		return protoserver.Errorf(protoserver.FailedPrecondition, "%s", req.Text)
	}
	for _, b := range req.Data {
		if err := s.Send(&EchoResponse{Data: []byte{b}}); err != nil {
			return err
		}
	}
	return nil
}

// Join answers with every request's data, joined.
func (Streams) Join(s Test_JoinServer) error {
	var all []byte
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(&EchoResponse{Data: all})
		}
		if err != nil {
			return err
		}
		all = append(all, req.Data...)
	}
}
