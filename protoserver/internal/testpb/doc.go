// Package testpb holds the messages and the generated Test service of the
// protoserver tests and benchmarks (regenerate with proto/generate.sh),
// and Streams, the streaming methods those tests share (streams.go).
package testpb
