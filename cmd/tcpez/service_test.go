package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

const demoJSON = `{"hello": "world", "n": [1, 2.5, "three"], "nested": {"ok": true, "none": null}}`

// sameJSON fails unless got and want hold the same JSON value.
func sameJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// TestCallServiceJSON: "tcpez call --method" against "tcpez serve --mode
// service", both real processes, sends JSON and prints JSON, with the
// message types from the service's reflection method.
func TestCallServiceJSON(t *testing.T) {
	addr, _ := startServe(t, "--mode", "service")
	out, errOut, code := call(t, "--addr", addr, "--method", demoMethod, "--data", demoJSON)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sameJSON(t, out, demoJSON)

	// Without the leading slash, and a BytesValue (JSON: base64).
	out, errOut, code = call(t, "--addr", addr, "--method", "tcpez.bench/Echo", "--data", `"aGVsbG8="`)
	if code != 0 || strings.TrimSpace(out) != `"aGVsbG8="` {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}

	out, _, code = call(t, "--addr", addr, "--list")
	if code != 0 || !strings.Contains(out, demoMethod+"(google.protobuf.Struct) returns (google.protobuf.Struct)") {
		t.Fatalf("exit %d, list:\n%s", code, out)
	}

	// Errors say what is wrong, and exit 1.
	for _, tc := range []struct{ args, want string }{
		{"--method /no.Such/Method", "no such method"},
		{"--method " + demoMethod + " --data [1]", "not a JSON google.protobuf.Struct"},
	} {
		_, errOut, code := call(t, append([]string{"--addr", addr}, strings.Fields(tc.args)...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, %q; want 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestCallProtoset: the message types can come from a descriptor set that
// protoc wrote, instead of reflection.
func TestCallProtoset(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc is not installed (.ci/run installs it)")
	}
	set := filepath.Join(t.TempDir(), "demo.protoset")
	if out, err := exec.Command(protoc, "-I", "testdata", "--include_imports", "--descriptor_set_out", set, "demo.proto").CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	addr, _ := startServe(t, "--mode", "service")
	out, errOut, code := call(t, "--addr", addr, "--protoset", set, "--method", "tcpez.demo.Demo/Echo", "--data", demoJSON)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sameJSON(t, out, demoJSON)
}

// TestBenchAnyMethod: "tcpez bench --method" loads a method of a real
// "tcpez serve --mode service" with a JSON request, and the report has a
// latency histogram.
func TestBenchAnyMethod(t *testing.T) {
	addr, _ := startServe(t, "--mode", "service")
	out, err := exec.Command(binary, "bench", "--addr", addr, "--method", demoMethod, "--data", demoJSON,
		"--requests", "200", "--warmup", "0", "--json").Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep benchReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var inHist int64
	for _, b := range rep.Histogram {
		inHist += b.Count
	}
	if rep.Requests != 200 || rep.Errors != 0 || rep.Method != demoMethod || inHist != 200 {
		t.Fatalf("report %+v; %d in the histogram", rep, inHist)
	}

	// The built-in service-mode echo loads it too.
	out, err = exec.Command(binary, "bench", "--addr", addr, "--mode", "service", "--requests", "100", "--warmup", "0", "--json").Output()
	if err != nil {
		t.Fatalf("--mode service: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, &rep); err != nil || rep.Requests != 100 || rep.Errors != 0 {
		t.Fatalf("--mode service: %v %+v", err, rep)
	}

	text, err := exec.Command(binary, "bench", "--addr", addr, "--method", demoMethod, "--requests", "50", "--warmup", "0").Output()
	if err != nil || !strings.Contains(string(text), "latency histogram\n") || !strings.Contains(string(text), "█") {
		t.Fatalf("%v\n%s", err, text)
	}
}

// TestStreamingMethods: call --list shows streaming methods as a .proto
// file declares them, and call refuses one with a clear error, exit 1,
// before sending anything (it makes unary calls only). They used to be
// listed as unary methods and called as such.
func TestStreamingMethods(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc is not installed (.ci/run installs it)")
	}
	set := filepath.Join(t.TempDir(), "streams.protoset")
	if out, err := exec.Command(protoc, "-I", "testdata", "--include_imports", "--descriptor_set_out", set, "streams.proto").CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	addr, _ := startServe(t, "--mode", "service")
	out, errOut, code := call(t, "--addr", addr, "--protoset", set, "--list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"/tcpez.streams.Streams/Get(google.protobuf.StringValue) returns (google.protobuf.StringValue)",
		"/tcpez.streams.Streams/Watch(google.protobuf.StringValue) returns (stream google.protobuf.StringValue)",
		"/tcpez.streams.Streams/Upload(stream google.protobuf.BytesValue) returns (google.protobuf.Int64Value)",
		"/tcpez.streams.Streams/Chat(stream google.protobuf.StringValue) returns (stream google.protobuf.StringValue)",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	_, errOut, code = call(t, "--addr", addr, "--protoset", set, "--method", "tcpez.streams.Streams/Watch", "--data", `"x"`)
	if code != 1 || !strings.Contains(errOut, "streaming method") {
		t.Fatalf("calling a streaming method: exit %d, %q; want 1 and a streaming method", code, errOut)
	}
}

// protoset runs protoc on the file name of testdata, with --include_imports
// if imports, and returns the descriptor set it wrote.
func protoset(t *testing.T, name string, imports bool) string {
	t.Helper()
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc is not installed (.ci/run installs it)")
	}
	set := filepath.Join(t.TempDir(), strings.TrimSuffix(name, ".proto")+".protoset")
	args := []string{"-I", "testdata", "--descriptor_set_out", set, name}
	if imports {
		args = append(args, "--include_imports")
	}
	if out, err := exec.Command(protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	return set
}

// TestCallServiceTypesInJSON: google.protobuf.Any fields holding the
// service's own types, and its extensions, go both ways in the JSON of
// "tcpez call", resolved from the descriptors tcpez has (here a descriptor
// set). They used to be looked up among the types compiled into tcpez
// only: a request with them was refused, and an answer with them was not
// printed, exit 1, though the call had succeeded.
func TestCallServiceTypesInJSON(t *testing.T) {
	set := protoset(t, "anys.proto", true)
	addr, _ := startServe(t, "--mode", "service")
	for _, data := range []string{
		`{"any": {"@type": "type.googleapis.com/tcpez.demo.Ctl", "mode": "m"}}`,
		`{"any": {"@type": "type.googleapis.com/google.protobuf.Timestamp", "value": "1970-01-01T00:00:05Z"}, "at": "1970-01-01T00:00:06Z"}`,
		`{"any": {"@type": "type.googleapis.com/tcpez.demo.Holder", "[tcpez.demo.ext]": "inner"}, "[tcpez.demo.ext]": "e"}`,
		// Not in the set: one of the well-known types compiled into tcpez.
		`{"any": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.500s"}}`,
	} {
		out, errOut, code := call(t, "--addr", addr, "--protoset", set, "--method", "tcpez.demo.Demo/Echo", "--data", data)
		if code != 0 || errOut != "" {
			t.Fatalf("%s: exit %d: %s", data, code, errOut)
		}
		sameJSON(t, out, data)
	}
}

// TestProtosetWellKnownImports: a descriptor set written without
// --include_imports may import any of the well-known types, as docs/CLI.md
// says: tcpez has them all compiled in (wellknown.go). Timestamp, Duration
// and FieldMask, among others, used to be missing: "could not resolve
// import". The sets are written here as protoc would write them, since not
// every protoc installs compiler/plugin.proto.
func TestProtosetWellKnownImports(t *testing.T) {
	addr, _ := startServe(t, "--mode", "service")
	for _, wkt := range []struct{ path, message string }{
		{"google/protobuf/any.proto", "google.protobuf.Any"},
		{"google/protobuf/api.proto", "google.protobuf.Api"},
		{"google/protobuf/descriptor.proto", "google.protobuf.FileDescriptorSet"},
		{"google/protobuf/duration.proto", "google.protobuf.Duration"},
		{"google/protobuf/empty.proto", "google.protobuf.Empty"},
		{"google/protobuf/field_mask.proto", "google.protobuf.FieldMask"},
		{"google/protobuf/source_context.proto", "google.protobuf.SourceContext"},
		{"google/protobuf/struct.proto", "google.protobuf.Struct"},
		{"google/protobuf/timestamp.proto", "google.protobuf.Timestamp"},
		{"google/protobuf/type.proto", "google.protobuf.Type"},
		{"google/protobuf/wrappers.proto", "google.protobuf.StringValue"},
		{"google/protobuf/compiler/plugin.proto", "google.protobuf.compiler.CodeGeneratorRequest"},
	} {
		// syntax = "proto3"; package wkt; import PATH;
		// service S { rpc M(MESSAGE) returns (MESSAGE); }
		set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{{
			Name:       proto.String("wkt.proto"),
			Package:    proto.String("wkt"),
			Syntax:     proto.String("proto3"),
			Dependency: []string{wkt.path},
			Service: []*descriptorpb.ServiceDescriptorProto{{
				Name: proto.String("S"),
				Method: []*descriptorpb.MethodDescriptorProto{{
					Name:       proto.String("M"),
					InputType:  proto.String("." + wkt.message),
					OutputType: proto.String("." + wkt.message),
				}},
			}},
		}}}
		b, err := proto.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "wkt.protoset")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := call(t, "--addr", addr, "--protoset", path, "--list")
		want := fmt.Sprintf("/wkt.S/M(%s) returns (%[1]s)\n", wkt.message)
		if code != 0 || out != want {
			t.Errorf("importing %s: exit %d, %q %s; want %q", wkt.path, code, out, errOut, want)
		}
	}
}

// TestCallFailedStatusLine: a call that the service fails prints its
// status as docs/CLI.md shows it, "tcpez call: Unimplemented: ...", on one
// line, and exits 1. It used to print "tcpez call: tcpez/protoserver:
// Unimplemented: ...".
func TestCallFailedStatusLine(t *testing.T) {
	set := protoset(t, "streams.proto", true)
	addr, _ := startServe(t, "--mode", "service")
	// Get is unary, and the demo service does not have it.
	out, errOut, code := call(t, "--addr", addr, "--protoset", set, "--method", "tcpez.streams.Streams/Get", "--data", `"x"`)
	want := `tcpez call: Unimplemented: unknown method "/tcpez.streams.Streams/Get"` + "\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
}
