package stats_test

import (
	"fmt"
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
