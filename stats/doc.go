// Package stats is how tcpez reports metrics: the Recorder interface that
// the server, the client and spans report to, and Recorders that need no
// dependency.
//
//	mem := stats.NewMemory()
//	srv := server.New(h, server.Config{Stats: mem})
//	...
//	fmt.Println(mem.Counter("requests"))
//
// The server and client never know where the numbers go. Recorder methods
// are called on the request path, so every implementation either does
// nothing (Nop), takes a short mutex (Memory), or hands the event to a
// background goroutine without waiting (statsd.Recorder, in the
// stats/statsd subpackage, which alone links the statsd client library).
// A slow or dead metrics backend therefore costs lost metrics, never
// slower requests.
//
// Multi sends the same events to several Recorders, for example a
// statsd.Recorder for production dashboards and a Memory for a command
// that prints a summary at exit.
package stats
