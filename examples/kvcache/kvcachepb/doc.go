// Package kvcachepb holds the messages and the generated tcpez client and
// server of the Cache service of examples/kvcache, and the records of its
// snapshot files. Regenerate with proto/generate.sh.
package kvcachepb
