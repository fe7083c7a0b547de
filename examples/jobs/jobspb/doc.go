// Package jobspb holds the messages and the generated tcpez client and
// server of the Jobs service of examples/jobs. Regenerate with
// proto/generate.sh.
package jobspb
