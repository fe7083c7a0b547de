package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
)

// serviceCall is a "tcpez call --method" or "--list".
type serviceCall struct {
	method, data, protoset string
	list                   bool
}

func (sc serviceCall) run(ctx context.Context, addr string, cfg client.Config, stdout io.Writer) error {
	c, err := client.New([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.WaitConnected(ctx); err != nil {
		return err
	}
	pc := protoserver.NewClient(c, protoserver.ClientConfig{})
	ms, err := sc.methods(ctx, pc)
	if err != nil {
		return err
	}
	if sc.list {
		for _, name := range ms.names() {
			fmt.Fprintln(stdout, ms[name])
		}
		return nil
	}
	m, err := ms.lookup(sc.method)
	if err != nil {
		return err
	}
	out, err := invokeJSON(ctx, pc, m, []byte(sc.data))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

func (sc serviceCall) methods(ctx context.Context, pc *protoserver.Client) (methodSet, error) {
	if sc.protoset != "" {
		return methodsFromProtoset(sc.protoset)
	}
	return methodsFromReflection(ctx, pc)
}

// invokeJSON calls m with the request in JSON and returns the answer in
// JSON, indented.
func invokeJSON(ctx context.Context, pc *protoserver.Client, m method, data []byte) ([]byte, error) {
	req, err := jsonRequest(m, data)
	if err != nil {
		return nil, err
	}
	wire := dynamicpb.NewMessage(m.resp)
	if err := pc.Call(ctx, m.name, req, wire); err != nil {
		return nil, callFailed(err)
	}
	// The client decoded the answer with the types compiled into tcpez, to
	// which the service's extensions are unknown fields: decode it again
	// with the service's own types.
	b, err := proto.Marshal(wire)
	if err != nil {
		return nil, err
	}
	resp := dynamicpb.NewMessage(m.resp)
	if err := (proto.UnmarshalOptions{Resolver: m.types}).Unmarshal(b, resp); err != nil {
		return nil, err
	}
	b, err = protojson.MarshalOptions{Resolver: m.types}.Marshal(resp)
	if err != nil {
		return nil, err
	}
	// protojson varies its spacing on purpose; indent it one fixed way.
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// jsonRequest decodes data as m's request message.
func jsonRequest(m method, data []byte) (*dynamicpb.Message, error) {
	req := dynamicpb.NewMessage(m.req)
	if err := (protojson.UnmarshalOptions{Resolver: m.types}).Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("the request is not a JSON %s: %w", m.req.FullName(), err)
	}
	return req, nil
}

// callFailed is the error of a failed call as docs/CLI.md shows it: the
// code and message of its status ("NotFound: nothing here"), without the
// "tcpez/protoserver: " that Status.Error begins with.
func callFailed(err error) error {
	var st *protoserver.Status
	if !errors.As(err, &st) {
		return err
	}
	return statusError{st}
}

// statusError prints a status as "Code: message"; errors.Is and errors.As
// still find the status in it.
type statusError struct{ st *protoserver.Status }

func (e statusError) Error() string {
	if e.st.Message == "" {
		return e.st.Code.String()
	}
	return e.st.Code.String() + ": " + e.st.Message
}

func (e statusError) Unwrap() error { return e.st }
