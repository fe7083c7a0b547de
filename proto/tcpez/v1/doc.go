// Package tcpezv1 holds the generated types of the tcpez service-mode
// envelope, proto/tcpez/v1/envelope.proto: Request, Response and Status.
//
// The protoserver package encodes and decodes the envelope itself, on the
// wire format, and does not use these types on its hot path; they are for
// programs in other languages' terms, tests, and tools that read tcpez
// traffic. Regenerate with proto/generate.sh.
package tcpezv1
