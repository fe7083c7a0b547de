package main

// The well-known types, every google/protobuf/*.proto file that protoc
// ships and protobuf-go compiles, linked in for what they register:
// buildFiles takes the imports that a descriptor set leaves out (protoc
// without --include_imports) from protoregistry.GlobalFiles, and JSON
// finds the types of google.protobuf.Any fields in
// protoregistry.GlobalTypes, which hold only the packages the program
// links. Without these, a set importing timestamp.proto, say, could not
// be built. The test TestProtosetWellKnownImports lists the same files.
import (
	_ "google.golang.org/protobuf/types/descriptorpb"          // google/protobuf/descriptor.proto
	_ "google.golang.org/protobuf/types/known/anypb"           // google/protobuf/any.proto
	_ "google.golang.org/protobuf/types/known/apipb"           // google/protobuf/api.proto
	_ "google.golang.org/protobuf/types/known/durationpb"      // google/protobuf/duration.proto
	_ "google.golang.org/protobuf/types/known/emptypb"         // google/protobuf/empty.proto
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"     // google/protobuf/field_mask.proto
	_ "google.golang.org/protobuf/types/known/sourcecontextpb" // google/protobuf/source_context.proto
	_ "google.golang.org/protobuf/types/known/structpb"        // google/protobuf/struct.proto
	_ "google.golang.org/protobuf/types/known/timestamppb"     // google/protobuf/timestamp.proto
	_ "google.golang.org/protobuf/types/known/typepb"          // google/protobuf/type.proto
	_ "google.golang.org/protobuf/types/known/wrapperspb"      // google/protobuf/wrappers.proto
	_ "google.golang.org/protobuf/types/pluginpb"              // google/protobuf/compiler/plugin.proto
)
