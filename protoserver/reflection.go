package protoserver

import (
	"context"
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
// methods with their message types and the descriptors of the files that
// define them (tcpez.v1.ReflectionResponse), as gRPC server reflection
// does. A service exposes it by choice, since it shows its whole API:
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
	for _, name := range s.Methods() {
		s.mu.Lock()
		types := s.methods[name].h.types
		s.mu.Unlock()
		if types[0] == nil || types[1] == nil {
			continue
		}
		resp.Methods = append(resp.Methods, &tcpezv1.MethodDescriptor{
			Name:         name,
			RequestType:  string(types[0].FullName()),
			ResponseType: string(types[1].FullName()),
		})
		add(types[0].ParentFile())
		add(types[1].ParentFile())
	}
	return resp
}
