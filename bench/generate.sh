#!/usr/bin/env bash
# Regenerates the benchmark's protobuf code:
#
#   bash bench/generate.sh        (from anywhere)
#
#   echopb/echo.proto   -> echo.pb.go (messages), echo_grpc.pb.go (gRPC),
#                          echo_drpc.pb.go (DRPC)
#   tcpezpb/echo.proto  -> echo.pb.go (descriptor), echo_tcpez.pb.go (tcpez
#                          service mode)
#   vtpb/echo.proto     -> echo.pb.go, echo_tcpez.pb.go, echo_vtproto.pb.go
#                          (planetscale/vtprotobuf's marshalling code)
#
# It needs protoc (3.21 or later) and Go. The plugins are built from pinned
# versions: protoc-gen-go and protoc-gen-go-drpc from the versions bench/go.mod
# requires, protoc-gen-go-tcpez from this repository (through the replace in
# bench/go.mod), protoc-gen-go-grpc at $GRPC_GEN_VERSION and
# protoc-gen-go-vtproto at $VTPROTO_GEN_VERSION. Paths are relative to
# the repository root, which is the import root, so that the registered file
# names (bench/echopb/echo.proto) cannot clash with other packages'.
set -euo pipefail
GRPC_GEN_VERSION=v1.6.2
VTPROTO_GEN_VERSION=v0.6.0

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$bench"
go build -o "$tmp/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$tmp/protoc-gen-go-drpc" storj.io/drpc/cmd/protoc-gen-go-drpc
go build -o "$tmp/protoc-gen-go-tcpez" github.com/tcpez/tcpez/cmd/protoc-gen-go-tcpez
GOBIN="$tmp" GOFLAGS=-mod=mod go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$GRPC_GEN_VERSION"
GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$VTPROTO_GEN_VERSION"

cd "$root"
protoc -I . \
  --plugin=protoc-gen-go="$tmp/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$tmp/protoc-gen-go-grpc" \
  --plugin=protoc-gen-go-drpc="$tmp/protoc-gen-go-drpc" \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  --go-drpc_out=. --go-drpc_opt=paths=source_relative \
  bench/echopb/echo.proto
protoc -I . \
  --plugin=protoc-gen-go="$tmp/protoc-gen-go" \
  --plugin=protoc-gen-go-tcpez="$tmp/protoc-gen-go-tcpez" \
  --go_out=. --go_opt=paths=source_relative \
  --go-tcpez_out=. --go-tcpez_opt=paths=source_relative \
  bench/tcpezpb/echo.proto
protoc -I . \
  --plugin=protoc-gen-go="$tmp/protoc-gen-go" \
  --plugin=protoc-gen-go-tcpez="$tmp/protoc-gen-go-tcpez" \
  --plugin=protoc-gen-go-vtproto="$tmp/protoc-gen-go-vtproto" \
  --go_out=. --go_opt=paths=source_relative \
  --go-tcpez_out=. --go-tcpez_opt=paths=source_relative \
  --go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+unmarshal_unsafe+size+pool \
  --go-vtproto_opt=pool=github.com/tcpez/tcpez/bench/vtpb.EchoRequest,pool=github.com/tcpez/tcpez/bench/vtpb.EchoResponse \
  bench/vtpb/echo.proto

# protoc-gen-go and protoc-gen-go-grpc write the version of protoc into each
# file; drop that line so the output does not depend on which protoc ran.
sed -i '/^\/\/ \tprotoc  *v[0-9]/d; /^\/\/ \tprotoc  *(unknown)/d; /^\/\/ - protoc  *v[0-9]/d; /^\/\/ - protoc  *(unknown)/d' \
  bench/echopb/*.pb.go bench/tcpezpb/*.pb.go bench/vtpb/*.pb.go
gofmt -l bench/echopb bench/tcpezpb bench/vtpb | { ! grep . ; }
