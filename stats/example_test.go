package stats_test

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tcpez/tcpez/stats"
)

func ExampleMemory() {
	m := stats.NewMemory()
	m.Count("requests", 1)
	m.Count("requests", 1)
	m.Gauge("conns", 3)
	m.Timing("request", 2*time.Millisecond)

	conns, _ := m.GaugeValue("conns")
	fmt.Println(m.Names())
	fmt.Println(m.Counter("requests"), conns, m.Timings("request"))
	// Output:
	// [conns request requests]
	// 2 3 [2ms]
}

func ExampleNewStatsd() {
	// A local UDP socket stands in for the statsd daemon.
	daemon, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer daemon.Close()

	rec, err := stats.NewStatsd(stats.StatsdConfig{
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
