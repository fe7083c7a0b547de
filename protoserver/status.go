package protoserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tcpez/tcpez/frame"
	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
)

// Code is a call's outcome, numbered as gRPC numbers its codes, so that
// tcpez and gRPC services can share error handling.
type Code int32

// The codes, with gRPC's numbers. The comments say which ones protoserver
// itself produces, and when.
const (
	OK Code = 0
	// Canceled: the caller's context was canceled (client side).
	Canceled Code = 1
	// Unknown: a handler returned an error that is not a *Status.
	Unknown            Code = 2
	InvalidArgument    Code = 3 // an undecodable envelope or request message
	DeadlineExceeded   Code = 4 // the caller's deadline passed
	NotFound           Code = 5
	AlreadyExists      Code = 6
	PermissionDenied   Code = 7
	ResourceExhausted  Code = 8 // the service's concurrency limit was reached, or a frame limit
	FailedPrecondition Code = 9
	Aborted            Code = 10
	OutOfRange         Code = 11
	Unimplemented      Code = 12 // no such method
	Internal           Code = 13 // a handler panicked, or an answer could not be encoded or decoded
	// Unavailable: the service is draining, the server is closing, or
	// (client side) there was no connection or it broke. Unless the
	// connection broke, the method did not run, so the call may be retried.
	Unavailable     Code = 14
	DataLoss        Code = 15
	Unauthenticated Code = 16 // see middleware.Auth
)

var codeNames = [...]string{
	OK:                 "OK",
	Canceled:           "Canceled",
	Unknown:            "Unknown",
	InvalidArgument:    "InvalidArgument",
	DeadlineExceeded:   "DeadlineExceeded",
	NotFound:           "NotFound",
	AlreadyExists:      "AlreadyExists",
	PermissionDenied:   "PermissionDenied",
	ResourceExhausted:  "ResourceExhausted",
	FailedPrecondition: "FailedPrecondition",
	Aborted:            "Aborted",
	OutOfRange:         "OutOfRange",
	Unimplemented:      "Unimplemented",
	Internal:           "Internal",
	Unavailable:        "Unavailable",
	DataLoss:           "DataLoss",
	Unauthenticated:    "Unauthenticated",
}

// String returns the code's name, such as "NotFound", or "Code(n)" for a
// number without one.
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Code(" + strconv.Itoa(int(c)) + ")"
}

// Status is the error of a failed call: the one a handler returned or
// caused, carried back to the caller in the response envelope, or one the
// client made for a call that got no answer. Find it in an error with
// errors.As, or use StatusOf or CodeOf.
//
// A client-made Status wraps its cause, so that errors.Is(err,
// client.ErrConnLost) and the like still work on it; see also Is.
type Status struct {
	Code    Code
	Message string
	// Details are messages for programs, such as google.rpc error details.
	Details []*anypb.Any

	cause error
}

// Errorf returns a Status with code and a formatted message. A handler
// returns it to choose the code its caller sees.
func Errorf(code Code, format string, a ...any) *Status {
	return &Status{Code: code, Message: fmt.Sprintf(format, a...)}
}

// Error returns "tcpez/protoserver: <code>: <message>".
func (s *Status) Error() string {
	if s == nil {
		return "tcpez/protoserver: " + errNilStatus
	}
	if s.Message == "" {
		return "tcpez/protoserver: " + s.Code.String()
	}
	return "tcpez/protoserver: " + s.Code.String() + ": " + s.Message
}

// Unwrap returns the local cause of a client-made Status, nil otherwise.
func (s *Status) Unwrap() error {
	if s == nil {
		return nil
	}
	return s.cause
}

// errNilStatus describes a nil *Status in an error: a failure (the error is
// not nil), which the methods of a Status do not turn into a panic.
const errNilStatus = "a nil *Status returned as an error"

// Is makes a DeadlineExceeded Status match context.DeadlineExceeded and a
// Canceled one context.Canceled, whether the client or the server made it:
// a call that ran out of time may hear so from either.
func (s *Status) Is(target error) bool {
	if s == nil {
		return false
	}
	switch s.Code {
	case DeadlineExceeded:
		return target == context.DeadlineExceeded
	case Canceled:
		return target == context.Canceled
	}
	return false
}

// WithDetails returns a copy of s with msgs added to its details.
func (s *Status) WithDetails(msgs ...proto.Message) (*Status, error) {
	t := *s
	t.Details = append([]*anypb.Any(nil), s.Details...)
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			return nil, err
		}
		t.Details = append(t.Details, a)
	}
	return &t, nil
}

// Proto returns s as the envelope's Status message.
func (s *Status) Proto() *tcpezv1.Status {
	return &tcpezv1.Status{Code: int32(s.Code), Message: s.Message, Details: s.Details}
}

// FromProto returns the Status that p describes, nil for a nil p or code OK.
func FromProto(p *tcpezv1.Status) *Status {
	if p == nil || p.GetCode() == int32(OK) {
		return nil
	}
	return &Status{Code: Code(p.GetCode()), Message: p.GetMessage(), Details: p.GetDetails()}
}

// StatusOf returns the Status that err stands for: nil for nil, the
// *Status found by errors.As, DeadlineExceeded or Canceled for the context
// errors, ResourceExhausted for a message over a frame limit (a stream's
// Recv), Internal for a nil *Status (a handler's mistake: the error is not
// nil), and Unknown with err's text for anything else.
func StatusOf(err error) *Status {
	if err == nil {
		return nil
	}
	if s, ok := errors.AsType[*Status](err); ok {
		if s == nil {
			return &Status{Code: Internal, Message: errNilStatus}
		}
		return s
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Status{Code: DeadlineExceeded, Message: err.Error(), cause: err}
	case errors.Is(err, context.Canceled):
		return &Status{Code: Canceled, Message: err.Error(), cause: err}
	case errors.Is(err, frame.ErrFrameTooLarge):
		return &Status{Code: ResourceExhausted, Message: err.Error(), cause: err}
	}
	return &Status{Code: Unknown, Message: err.Error(), cause: err}
}

// CodeOf returns the code of StatusOf(err): OK for nil.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	return StatusOf(err).Code
}
