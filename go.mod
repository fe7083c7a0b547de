module github.com/tcpez/tcpez

go 1.26

require (
	github.com/cactus/go-statsd-client/v5 v5.1.0 // indirect
	github.com/sirupsen/logrus v1.10.2 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sys v0.13.0 // indirect
)
