// Package reqreppb holds the Request and Response messages of
// examples/reqrep, the original tcpez reqrep example's, unchanged on the
// wire. Regenerate with proto/generate.sh.
package reqreppb
