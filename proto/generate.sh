#!/usr/bin/env bash
# Regenerates every generated protobuf file in the repository: the
# envelope, the examples' and the tests' messages and services.
#
#   bash proto/generate.sh
#
# It needs protoc (3.21 or later, with the well-known types next to it, as
# Debian's protobuf-compiler has them) and Go. protoc-gen-go is built from
# the google.golang.org/protobuf version that go.mod requires and
# protoc-gen-go-tcpez from this repository, so the output depends only on the
# checkout and protoc. CI runs this and then `git diff --exit-code`.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$tmp/protoc-gen-go-tcpez" ./cmd/protoc-gen-go-tcpez

# Every .proto file of the repository, in a fixed order; paths are relative to
# the repository root, which is also the import root.
mapfile -t protos < <(find proto protoserver examples cmd -name '*.proto' -not -path '*/testdata/*' | LC_ALL=C sort)

protoc -I . \
  --plugin=protoc-gen-go="$tmp/protoc-gen-go" \
  --plugin=protoc-gen-go-tcpez="$tmp/protoc-gen-go-tcpez" \
  --go_out=. --go_opt=paths=source_relative \
  --go-tcpez_out=. --go-tcpez_opt=paths=source_relative \
  "${protos[@]}"

# protoc-gen-go writes the version of protoc into each file; drop that line
# so that the output does not depend on which protoc generated it.
for f in "${protos[@]}"; do
  g="${f%.proto}.pb.go"
  sed -i '/^\/\/ \tprotoc  *v[0-9]/d; /^\/\/ \tprotoc  *(unknown)/d' "$g"
done
gofmt -l $(for f in "${protos[@]}"; do ls "${f%.proto}"*.pb.go; done) | { ! grep . ; }
