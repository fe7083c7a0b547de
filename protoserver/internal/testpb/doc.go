// Package testpb holds the messages and the generated Test service of the
// protoserver tests and benchmarks. Regenerate with proto/generate.sh.
package testpb
