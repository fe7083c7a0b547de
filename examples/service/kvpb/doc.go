// Package kvpb holds the messages and the generated tcpez client and server
// of the KV service of examples/service. Regenerate with proto/generate.sh.
package kvpb
