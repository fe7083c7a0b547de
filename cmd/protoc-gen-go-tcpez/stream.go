package main

import "google.golang.org/protobuf/compiler/protogen"

// The code of streaming methods, shaped like gRPC's: the client's method
// returns a Service_MethodClient, the server's method takes a
// Service_MethodServer, each an interface with the calls that the
// method's kind allows, implemented by protoserver.ClientStream and
// protoserver.ServerStream.

func clientStreamName(m *protogen.Method) string { return m.Parent.GoName + "_" + m.GoName + "Client" }

func serverStreamName(m *protogen.Method) string { return m.Parent.GoName + "_" + m.GoName + "Server" }

// streamTypes is the type arguments of m's protoserver streams.
func streamTypes(g *protogen.GeneratedFile, m *protogen.Method) string {
	return "[*" + g.QualifiedGoIdent(m.Input.GoIdent) + ", *" + g.QualifiedGoIdent(m.Output.GoIdent) + "]"
}

// clientStreamSignature is the parameters and results of m's client
// method, its parameters named as id says.
func clientStreamSignature(g *protogen.GeneratedFile, m *protogen.Method, id idents) string {
	ctx := g.QualifiedGoIdent(contextPkg.Ident("Context"))
	if m.Desc.IsStreamingClient() {
		return "(" + id.ctx + " " + ctx + ") (" + clientStreamName(m) + ", error)"
	}
	return "(" + id.ctx + " " + ctx + ", " + id.req + " *" + g.QualifiedGoIdent(m.Input.GoIdent) + ") (" + clientStreamName(m) + ", error)"
}

// serverStreamSignature is the parameters and result of m's server method,
// unnamed for the Unimplemented stub.
func serverStreamSignature(g *protogen.GeneratedFile, m *protogen.Method, anonymous bool) string {
	req, stream := "req *", "stream "
	if anonymous {
		req, stream = "*", ""
	}
	if m.Desc.IsStreamingClient() {
		return "(" + stream + serverStreamName(m) + ") error"
	}
	return "(" + req + g.QualifiedGoIdent(m.Input.GoIdent) + ", " + stream + serverStreamName(m) + ") error"
}

func genClientStreamMethod(g *protogen.GeneratedFile, m *protogen.Method, implName string, id idents) {
	g.P()
	g.P("func (", id.c, " ", implName, ") ", m.GoName, clientStreamSignature(g, m, id), " {")
	if m.Desc.IsStreamingClient() {
		g.P("s, err := ", protoserverPkg.Ident("OpenStream"), streamTypes(g, m), "(", id.ctx, ", ", id.c, ".cc, ", fullMethodConst(m), ")")
	} else {
		g.P("s, err := ", protoserverPkg.Ident("OpenServerStream"), streamTypes(g, m), "(", id.ctx, ", ", id.c, ".cc, ", fullMethodConst(m), ", ", id.req, ")")
	}
	g.P("if err != nil {")
	g.P("return nil, err")
	g.P("}")
	g.P("return s, nil")
	g.P("}")
}

func genRegisterStream(g *protogen.GeneratedFile, m *protogen.Method, id idents) {
	in := g.QualifiedGoIdent(m.Input.GoIdent)
	stream := "*" + g.QualifiedGoIdent(protoserverPkg.Ident("ServerStream")) + streamTypes(g, m)
	svc, impl, req, s := id.svc, id.impl, id.req, id.s
	switch {
	case !m.Desc.IsStreamingClient():
		g.P(svc, ".HandleStream(", fullMethodConst(m), ", ", protoserverPkg.Ident("ServerStreamMethod"),
			"(func(", req, " *", in, ", ", s, " ", stream, ") error { return ", impl, ".", m.GoName, "(", req, ", ", s, ") }))")
	case !m.Desc.IsStreamingServer():
		g.P(svc, ".HandleStream(", fullMethodConst(m), ", ", protoserverPkg.Ident("ClientStreamMethod"),
			"(func(", s, " ", stream, ") error { return ", impl, ".", m.GoName, "(", s, ") }))")
	default:
		g.P(svc, ".HandleStream(", fullMethodConst(m), ", ", protoserverPkg.Ident("BidiStreamMethod"),
			"(func(", s, " ", stream, ") error { return ", impl, ".", m.GoName, "(", s, ") }))")
	}
}

// genStreamTypes writes the client and server stream interfaces of m.
func genStreamTypes(g *protogen.GeneratedFile, m *protogen.Method) {
	in, out := g.QualifiedGoIdent(m.Input.GoIdent), g.QualifiedGoIdent(m.Output.GoIdent)
	ctx := g.QualifiedGoIdent(contextPkg.Ident("Context"))
	cs, ss := m.Desc.IsStreamingClient(), m.Desc.IsStreamingServer()

	g.P()
	g.P("// ", clientStreamName(m), " is the caller's end of a ", m.GoName, " stream. Cancel the")
	g.P("// context it was opened with to give it up early.")
	g.P("type ", clientStreamName(m), " interface {")
	if cs {
		g.P("// Send sends a request; io.EOF once the method has ended (Recv says how).")
		g.P("Send(*", in, ") error")
	}
	switch {
	case cs && !ss:
		g.P("// CloseAndRecv ends the requests and returns the one response.")
		g.P("CloseAndRecv() (*", out, ", error)")
	default:
		g.P("// Recv returns the next response; io.EOF once the method returned nil.")
		g.P("Recv() (*", out, ", error)")
	}
	if cs && ss {
		g.P("// CloseSend tells the method that no more requests come.")
		g.P("CloseSend() error")
	}
	g.P("Context() ", ctx)
	g.P("}")

	g.P()
	g.P("// ", serverStreamName(m), " is the method's end of a ", m.GoName, " stream.")
	g.P("type ", serverStreamName(m), " interface {")
	if ss {
		g.P("// Send sends a response.")
		g.P("Send(*", out, ") error")
	}
	if cs {
		g.P("// Recv returns the next request; io.EOF once the caller sent all.")
		g.P("Recv() (*", in, ", error)")
	}
	if cs && !ss {
		g.P("// SendAndClose sends the one response; the method then returns nil.")
		g.P("SendAndClose(*", out, ") error")
	}
	g.P("Context() ", ctx)
	g.P("}")
}
