package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/emptypb"

	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
	"github.com/tcpez/tcpez/protoserver"
)

// errNoMethod reports a method that the descriptors do not describe.
var errNoMethod = errors.New("no such method")

// errStreaming reports a streaming method, which call and bench, making
// unary calls, cannot call.
var errStreaming = errors.New("a streaming method: tcpez call and bench make unary calls only")

// method is a service-mode method with its message types, from a
// descriptor set or the service's reflection method.
type method struct {
	name      string
	req, resp protoreflect.MessageDescriptor
	// clientStreams and serverStreams say which way it streams, if any.
	clientStreams, serverStreams bool
	// types resolves the messages and extensions of the files that
	// describe the method, for Any fields and extensions in JSON.
	types *typeResolver
}

// String is the method as a .proto file declares it.
func (m method) String() string {
	stream := func(on bool) string {
		if on {
			return "stream "
		}
		return ""
	}
	return fmt.Sprintf("%s(%s%s) returns (%s%s)", m.name, stream(m.clientStreams), m.req.FullName(), stream(m.serverStreams), m.resp.FullName())
}

// methodSet is the methods a service has, by name.
type methodSet map[string]method

// lookup finds the unary method name as given, or with the leading "/"
// generated method names have.
func (ms methodSet) lookup(name string) (method, error) {
	m, ok := ms[name]
	if !ok {
		m, ok = ms["/"+name]
	}
	switch {
	case !ok:
		return method{}, fmt.Errorf("%w %q; the service has: %s", errNoMethod, name, strings.Join(ms.names(), ", "))
	case m.clientStreams || m.serverStreams:
		return method{}, fmt.Errorf("%s: %w", m, errStreaming)
	}
	return m, nil
}

func (ms methodSet) names() []string {
	names := make([]string, 0, len(ms))
	for name := range ms {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// methodsFromProtoset reads a descriptor set written by protoc
// --descriptor_set_out (best with --include_imports) and returns the
// methods of its services, named "/package.Service/Method".
func methodsFromProtoset(path string) (methodSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s is not a descriptor set: %w", path, err)
	}
	files, err := buildFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ms := methodSet{}
	types := newTypeResolver(files)
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				name := "/" + string(sd.FullName()) + "/" + string(md.Name())
				ms[name] = method{name: name, req: md.Input(), resp: md.Output(), clientStreams: md.IsStreamingClient(), serverStreams: md.IsStreamingServer(), types: types}
			}
		}
		return true
	})
	return ms, nil
}

// methodsFromReflection asks the service at the other end of pc for its
// methods (protoserver.ReflectionHandler).
func methodsFromReflection(ctx context.Context, pc *protoserver.Client) (methodSet, error) {
	resp, err := protoserver.Call[tcpezv1.ReflectionResponse](ctx, pc, protoserver.ReflectionMethod, &emptypb.Empty{})
	if err != nil {
		if protoserver.CodeOf(err) == protoserver.Unimplemented {
			return nil, fmt.Errorf("the service has no reflection method (%s); give --protoset: %w", protoserver.ReflectionMethod, err)
		}
		return nil, fmt.Errorf("reflection: %w", err)
	}
	files, err := buildFiles(resp.GetFiles())
	if err != nil {
		return nil, fmt.Errorf("reflection: %w", err)
	}
	ms := methodSet{}
	types := newTypeResolver(files)
	for _, m := range resp.GetMethods() {
		req, err := messageType(files, m.GetRequestType())
		if err != nil {
			return nil, fmt.Errorf("reflection: method %s: %w", m.GetName(), err)
		}
		resp, err := messageType(files, m.GetResponseType())
		if err != nil {
			return nil, fmt.Errorf("reflection: method %s: %w", m.GetName(), err)
		}
		ms[m.GetName()] = method{name: m.GetName(), req: req, resp: resp, clientStreams: m.GetClientStreaming(), serverStreams: m.GetServerStreaming(), types: types}
	}
	return ms, nil
}

func messageType(files *protoregistry.Files, name string) (protoreflect.MessageDescriptor, error) {
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, err
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a message type", name)
	}
	return md, nil
}

// buildFiles turns a descriptor set into a registry. Imports missing from
// the set (protoc without --include_imports) are taken from the files
// compiled into this program, which include all the well-known types
// (wellknown.go).
func buildFiles(set *descriptorpb.FileDescriptorSet) (*protoregistry.Files, error) {
	files := new(protoregistry.Files)
	r := resolver{files}
	for _, fdp := range set.GetFile() {
		if _, err := files.FindFileByPath(fdp.GetName()); err == nil {
			continue
		}
		fd, err := protodesc.NewFile(fdp, r)
		if err != nil {
			return nil, err
		}
		if err := files.RegisterFile(fd); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// resolver looks in the files built so far, then in the program's own.
type resolver struct{ files *protoregistry.Files }

func (r resolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.files.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (r resolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.files.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}

// typeResolver finds message types (for google.protobuf.Any) and
// extensions by name, as protojson and proto decoding need them: first in
// the files that describe the service, from its reflection method or a
// descriptor set, then among the types compiled into tcpez, which include
// the well-known types. protojson's default, the global registry, holds
// only the latter, so the service's own types in an Any were unresolvable.
type typeResolver struct{ local *dynamicpb.Types }

func newTypeResolver(files *protoregistry.Files) *typeResolver {
	return &typeResolver{dynamicpb.NewTypes(files)}
}

func (r *typeResolver) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	if mt, err := r.local.FindMessageByName(name); err == nil {
		return mt, nil
	}
	return protoregistry.GlobalTypes.FindMessageByName(name)
}

func (r *typeResolver) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	if mt, err := r.local.FindMessageByURL(url); err == nil {
		return mt, nil
	}
	return protoregistry.GlobalTypes.FindMessageByURL(url)
}

func (r *typeResolver) FindExtensionByName(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	if xt, err := r.local.FindExtensionByName(name); err == nil {
		return xt, nil
	}
	return protoregistry.GlobalTypes.FindExtensionByName(name)
}

func (r *typeResolver) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	if xt, err := r.local.FindExtensionByNumber(message, field); err == nil {
		return xt, nil
	}
	return protoregistry.GlobalTypes.FindExtensionByNumber(message, field)
}
