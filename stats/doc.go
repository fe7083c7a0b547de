// Package stats is how tcpez reports metrics.
//
// The server and client report through the Recorder interface and never
// know where the numbers go. Recorder methods are called on the request
// path, so every implementation here either does nothing (Nop), takes a
// short mutex (Memory), or hands the event to a background goroutine
// without waiting (Statsd). A slow or dead metrics backend therefore costs
// lost metrics, never slower requests: Statsd drops what it cannot queue
// and counts what it dropped.
//
// Multi sends the same events to several Recorders, for example a Statsd
// for production dashboards and a Memory for a command that prints a
// summary at exit.
package stats
