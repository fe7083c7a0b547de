package statsd_test

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tcpez/tcpez/stats/statsd"
)

func ExampleNew() {
	// A local UDP socket stands in for the statsd daemon.
	daemon, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer daemon.Close()

	rec, err := statsd.New(statsd.Config{
		Address: daemon.LocalAddr().String(),
		Prefix:  "myservice.tcpez",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec.Count("requests", 1)
	rec.Gauge("conns", 12)
	rec.Timing("request", 2500*time.Microsecond)
	// Close sends everything queued before it returns.
	if err := rec.Close(); err != nil {
		fmt.Println(err)
		return
	}

	_ = daemon.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for lines := 0; lines < 3; {
		n, _, err := daemon.ReadFrom(buf)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			fmt.Println(line)
			lines++
		}
	}
	// Output:
	// myservice.tcpez.requests:1|c
	// myservice.tcpez.conns:12|g
	// myservice.tcpez.request:2.5|ms
}
