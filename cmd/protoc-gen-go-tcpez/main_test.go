package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/pluginpb"
)

// root is the repository root, where the .proto paths start.
const root = "../.."

// TestGolden regenerates the committed _tcpez.pb.go files in process, from
// descriptors that protoc makes with source info (for the comments), and
// compares them byte for byte. proto/generate.sh and CI's git diff check
// the same end to end.
func TestGolden(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not installed")
	}
	for _, src := range []string{
		"protoserver/internal/testpb/test.proto",
		"examples/service/kvpb/kv.proto",
	} {
		set := filepath.Join(t.TempDir(), "set.pb")
		cmd := exec.Command(protoc, "-I", ".", "--include_imports", "--include_source_info", "--descriptor_set_out="+set, src)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("protoc: %v\n%s", err, out)
		}
		raw, err := os.ReadFile(set)
		if err != nil {
			t.Fatal(err)
		}
		var fds descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(raw, &fds); err != nil {
			t.Fatal(err)
		}
		files := run(t, &pluginpb.CodeGeneratorRequest{
			FileToGenerate: []string{src},
			Parameter:      proto.String("paths=source_relative"),
			ProtoFile:      fds.File,
		})
		name := strings.TrimSuffix(src, ".proto") + "_tcpez.pb.go"
		want, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 1 || files[0].GetName() != name {
			t.Fatalf("%s: generated %v", src, files)
		}
		if got := files[0].GetContent(); got != string(want) {
			t.Errorf("%s differs from what the plugin generates; run proto/generate.sh\n%s", name, got)
		}
	}
}

// run runs the plugin on req in process and returns its files, failing the
// test on an error.
func run(t *testing.T, req *pluginpb.CodeGeneratorRequest) []*pluginpb.CodeGeneratorResponse_File {
	t.Helper()
	resp := runErr(t, req)
	if resp.Error != nil {
		t.Fatalf("plugin error: %s", resp.GetError())
	}
	return resp.File
}

func runErr(t *testing.T, req *pluginpb.CodeGeneratorRequest) *pluginpb.CodeGeneratorResponse {
	t.Helper()
	gen, err := protogen.Options{}.New(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := generate(gen); err != nil {
		gen.Error(err)
	}
	return gen.Response()
}

// service builds a request for one file with one service of the given
// methods, all taking and returning M.
func service(methods ...*descriptorpb.MethodDescriptorProto) *pluginpb.CodeGeneratorRequest {
	for _, m := range methods {
		m.InputType, m.OutputType = proto.String(".p.M"), proto.String(".p.M")
	}
	f := &descriptorpb.FileDescriptorProto{
		Name:        proto.String("p/s.proto"),
		Package:     proto.String("p"),
		Syntax:      proto.String("proto3"),
		Options:     &descriptorpb.FileOptions{GoPackage: proto.String("example.com/p")},
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M")}},
		Service:     []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("S"), Method: methods}},
	}
	return &pluginpb.CodeGeneratorRequest{FileToGenerate: []string{"p/s.proto"}, ProtoFile: []*descriptorpb.FileDescriptorProto{f}}
}

// withMessage adds a message named name to req's file.
func withMessage(req *pluginpb.CodeGeneratorRequest, name string) *pluginpb.CodeGeneratorRequest {
	f := req.ProtoFile[0]
	f.MessageType = append(f.MessageType, &descriptorpb.DescriptorProto{Name: proto.String(name)})
	return req
}

func method(name string) *descriptorpb.MethodDescriptorProto {
	return &descriptorpb.MethodDescriptorProto{Name: proto.String(name)}
}

func TestGenerates(t *testing.T) {
	files := run(t, service(method("Get"), method("Put")))
	if len(files) != 1 || files[0].GetName() != "example.com/p/s_tcpez.pb.go" {
		t.Fatalf("files %v", files)
	}
	content := files[0].GetContent()
	for _, want := range []string{
		`S_Get_FullMethodName = "/p.S/Get"`,
		"GoPut(ctx context.Context, req *M) *protoserver.Future[M]",
		"func RegisterS(svc *protoserver.Service, impl SServer)",
		"func NewSClient(cc *protoserver.Client) SClient",
		"func (p *SPipeline) Put(req *M) *protoserver.Future[M]",
		"type UnimplementedSServer struct{}",
	} {
		if !strings.Contains(content, want) {
			t.Errorf("generated code lacks %q:\n%s", want, content)
		}
	}
	if strings.Contains(content, "protoc ") {
		t.Error("the generated code names a protoc version")
	}
	// Messages of other packages are imported.
	req := service(method("Ping"))
	req.ProtoFile[0].Dependency = []string{"google/protobuf/empty.proto"}
	req.ProtoFile[0].Service[0].Method[0].InputType = proto.String(".google.protobuf.Empty")
	req.ProtoFile = append([]*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(emptypb.File_google_protobuf_empty_proto)}, req.ProtoFile...)
	content = run(t, req)[0].GetContent()
	for _, want := range []string{
		`emptypb "google.golang.org/protobuf/types/known/emptypb"`,
		"Ping(ctx context.Context, req *emptypb.Empty) (*M, error)",
	} {
		if !strings.Contains(content, want) {
			t.Errorf("generated code lacks %q:\n%s", want, content)
		}
	}

	// A file without services gets no file.
	req = service()
	req.ProtoFile[0].Service = nil
	if files := run(t, req); len(files) != 0 {
		t.Fatalf("files for a file without services: %v", files)
	}
}

func TestRefuses(t *testing.T) {
	for name, req := range map[string]*pluginpb.CodeGeneratorRequest{
		"future name clash":             service(method("Get"), method("GoGet")),
		"into name clash":               service(method("Get"), method("GetInto")),
		"future into name clash":        service(method("GoFetch"), method("FetchInto")),
		"go and into":                   service(method("Go"), method("Into")),
		"pipeline name clash":           service(method("Flush")),
		"client name clash":             service(method("Pipeline")),
		"message named like the client": withMessage(service(method("Get")), "SClient"),
		"message named like Register":   withMessage(service(method("Get")), "RegisterS"),
		"two services, one client": func() *pluginpb.CodeGeneratorRequest {
			req := service(method("Get"))
			f := req.ProtoFile[0]
			// S and s both make the Go name S.
			f.Service = append(f.Service, &descriptorpb.ServiceDescriptorProto{Name: proto.String("s"), Method: []*descriptorpb.MethodDescriptorProto{{Name: proto.String("Get"), InputType: proto.String(".p.M"), OutputType: proto.String(".p.M")}}})
			return req
		}(),
	} {
		if resp := runErr(t, req); resp.Error == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestNoLocalHidesAPackage: messages may come from packages named like the
// generated code's receivers and parameters (a go_package ending in /svc,
// say). No function body may then refer to such a package through a name
// a local hides: the code would not compile ("svc.Out is not a type").
func TestNoLocalHidesAPackage(t *testing.T) {
	names := []string{"c", "p", "ctx", "req", "resp", "svc", "impl", "s", "ok"}
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: []string{"x/x.proto"}}
	main := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("x/x.proto"),
		Package: proto.String("x"),
		Syntax:  proto.String("proto3"),
		Options: &descriptorpb.FileOptions{GoPackage: proto.String("example.com/x")},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("S")}},
	}
	streams := []struct{ client, server bool }{{false, false}, {false, true}, {true, false}, {true, true}}
	for i, n := range names {
		// Every package's type also in a unary method: Register declares
		// locals for those.
		unary := &descriptorpb.MethodDescriptorProto{Name: proto.String("U" + n), InputType: proto.String("." + n + ".M"), OutputType: proto.String("." + n + ".M")}
		main.Service[0].Method = append(main.Service[0].Method, unary)
		req.ProtoFile = append(req.ProtoFile, &descriptorpb.FileDescriptorProto{
			Name:        proto.String(n + "/m.proto"),
			Package:     proto.String(n),
			Syntax:      proto.String("proto3"),
			Options:     &descriptorpb.FileOptions{GoPackage: proto.String("example.com/" + n)},
			MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M")}},
		})
		main.Dependency = append(main.Dependency, n+"/m.proto")
		typ := proto.String("." + n + ".M")
		st := streams[i%len(streams)]
		main.Service[0].Method = append(main.Service[0].Method, &descriptorpb.MethodDescriptorProto{
			Name: proto.String("M" + n), InputType: typ, OutputType: typ,
			ClientStreaming: proto.Bool(st.client), ServerStreaming: proto.Bool(st.server),
		})
	}
	req.ProtoFile = append(req.ProtoFile, main)
	content := run(t, req)[0].GetContent()
	f, err := parser.ParseFile(token.NewFileSet(), "x_tcpez.pb.go", content, 0)
	if err != nil {
		t.Fatalf("%v\n%s", err, content)
	}
	imports := map[string]bool{}
	for _, im := range f.Imports {
		if im.Name != nil {
			imports[im.Name.Name] = true
		} else {
			p, _ := strconv.Unquote(im.Path.Value)
			imports[path.Base(p)] = true
		}
	}
	hidden := 0
	ast.Inspect(f, func(n ast.Node) bool {
		var ft *ast.FuncType
		var recv *ast.FieldList
		var body *ast.BlockStmt
		switch fn := n.(type) {
		case *ast.FuncDecl:
			ft, recv, body = fn.Type, fn.Recv, fn.Body
		case *ast.FuncLit:
			ft, body = fn.Type, fn.Body
		default:
			return true
		}
		locals := map[string]bool{}
		for _, fl := range []*ast.FieldList{recv, ft.Params} {
			if fl == nil {
				continue
			}
			for _, field := range fl.List {
				for _, name := range field.Names {
					locals[name.Name] = true
				}
			}
		}
		// Names declared in the body (Register's "s, ok :=") hide from the
		// end of their statement to the end of the block or statement
		// holding it.
		type scope struct {
			name       string
			from, till token.Pos
		}
		var scopes []scope
		var stack []ast.Node
		ast.Inspect(body, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			if as, ok := n.(*ast.AssignStmt); ok && as.Tok == token.DEFINE && len(stack) > 0 {
				for _, l := range as.Lhs {
					if id, ok := l.(*ast.Ident); ok {
						scopes = append(scopes, scope{id.Name, as.End(), stack[len(stack)-1].End()})
					}
				}
			}
			stack = append(stack, n)
			return true
		})
		hides := func(name string, at token.Pos) bool {
			for _, sc := range scopes {
				if sc.name == name && sc.from <= at && at < sc.till {
					return true
				}
			}
			return locals[name]
		}
		ast.Inspect(body, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && imports[x.Name] && hides(x.Name, sel.Pos()) && sel.Sel.Name == "M" {
					hidden++
					t.Errorf("a local named %s hides package %s in %s.%s", x.Name, x.Name, x.Name, sel.Sel.Name)
				}
			}
			return true
		})
		return true
	})
	for _, n := range names {
		if !imports[n] {
			t.Errorf("package %s is not imported as %s: the test does not test it", n, n)
		}
	}
	if hidden > 0 {
		t.Log(content)
	}
}

// TestDeclaredIsWhatIsGenerated: checkDeclared's list of a service's
// package-level names (declared) is exactly what the generated file
// declares, for every kind of method, so that the clash check cannot fall
// behind the generator.
func TestDeclaredIsWhatIsGenerated(t *testing.T) {
	m := func(name string, client, server bool) *descriptorpb.MethodDescriptorProto {
		return &descriptorpb.MethodDescriptorProto{Name: proto.String(name), ClientStreaming: proto.Bool(client), ServerStreaming: proto.Bool(server)}
	}
	req := service(m("Get", false, false), m("Watch", false, true), m("Upload", true, false), m("Chat", true, true))
	content := run(t, req)[0].GetContent()
	f, err := parser.ParseFile(token.NewFileSet(), "s_tcpez.pb.go", content, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				got = append(got, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, sp := range d.Specs {
				switch sp := sp.(type) {
				case *ast.TypeSpec:
					got = append(got, sp.Name.Name)
				case *ast.ValueSpec:
					for _, n := range sp.Names {
						got = append(got, n.Name)
					}
				}
			}
		}
	}
	gen, err := protogen.Options{}.New(req)
	if err != nil {
		t.Fatal(err)
	}
	want := declared(gen.Files[len(gen.Files)-1].Services[0])
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the generated file declares\n\t%v\ndeclared lists\n\t%v", got, want)
	}
}
