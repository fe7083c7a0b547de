package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tcpez/tcpez/client"
)

// A client for the pods of a Kubernetes headless Service, found by the SRV
// records of its named port, with active health checks.
func ExampleDNSResolver() {
	c, err := client.New(nil, client.Config{
		Resolver: client.DNSResolver{
			Name:     "_tcpez._tcp.cache.prod.svc.cluster.local",
			Interval: 10 * time.Second,
		},
		HealthCheck: client.HealthCheck{Interval: time.Second},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
}

// Calls with the same key go to the same server while the set is stable.
func ExampleWithKey() {
	c, err := client.New(nil, client.Config{
		Resolver: client.DNSResolver{Name: "cache.prod.svc.cluster.local:7000"},
		Balancer: client.Rendezvous,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ans, err := c.Call(client.WithKey(ctx, "user:42"), []byte("get user:42"))
	fmt.Println(len(ans), err)
}
