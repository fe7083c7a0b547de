package protoserver

import (
	"context"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"

	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
	"github.com/tcpez/tcpez/span"
)

// ReflectionMethod is the name under which a service that wants tools to
// discover it (`tcpez call`, `tcpez bench`) serves ReflectionHandler.
const ReflectionMethod = "/tcpez.v1.Reflection/Describe"

// ReflectionHandler returns the reflection method of s, which lists s's
// methods, unary and streaming, with their message types and the
// descriptors of the files that define them (tcpez.v1.ReflectionResponse),
// as gRPC server reflection does. A service exposes it by choice, since it
// shows its whole API:
//
//	svc.Handle(protoserver.ReflectionMethod, protoserver.ReflectionHandler(svc))
//
// The answer is built at the first call, when the methods are fixed.
func ReflectionHandler(s *Service) *MethodHandler {
	var (
		once sync.Once
		resp *tcpezv1.ReflectionResponse
	)
	return Method(func(context.Context, *emptypb.Empty, *span.Span) (*tcpezv1.ReflectionResponse, error) {
		once.Do(func() { resp = describe(s) })
		return resp, nil
	})
}

// describe builds the reflection answer for s.
func describe(s *Service) *tcpezv1.ReflectionResponse {
	resp := &tcpezv1.ReflectionResponse{Files: &descriptorpb.FileDescriptorSet{}}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := range fd.Imports().Len() {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		resp.Files.File = append(resp.Files.File, protodesc.ToFileDescriptorProto(fd))
	}
	for _, m := range s.described() {
		types := m.types
		if types[0] == nil || types[1] == nil {
			continue
		}
		m.RequestType, m.ResponseType = string(types[0].FullName()), string(types[1].FullName())
		resp.Methods = append(resp.Methods, m.MethodDescriptor)
		add(types[0].ParentFile())
		add(types[1].ParentFile())
	}
	return resp
}

// describedMethod is a method of a Service for reflection, and its types.
type describedMethod struct {
	*tcpezv1.MethodDescriptor
	types [2]protoreflect.MessageDescriptor
}

// described returns the methods of s, unary and streaming, sorted by name.
func (s *Service) described() []describedMethod {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []describedMethod
	for name, m := range s.methods {
		out = append(out, describedMethod{&tcpezv1.MethodDescriptor{Name: name}, m.h.types})
	}
	for name, m := range s.streams {
		out = append(out, describedMethod{&tcpezv1.MethodDescriptor{
			Name:            name,
			ClientStreaming: m.h.clientStreams,
			ServerStreaming: m.h.serverStreams,
		}, m.h.types})
	}
	slices.SortFunc(out, func(a, b describedMethod) int { return strings.Compare(a.Name, b.Name) })
	return out
}
