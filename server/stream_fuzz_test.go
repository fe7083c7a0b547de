package server_test

import (
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
)

// FuzzStreamConn drives a version-3 mux connection whose handler echoes
// streams with arbitrary bytes after the preface: whatever they hold
// (streams opened, fed past their window, ended twice, cancelled), the
// server answers and closes once the client has, and never hangs or
// crashes.
func FuzzStreamConn(f *testing.F) {
	open := frame.AppendMux(nil, frame.KindOpen, 1, []byte("ECHO"))
	data := frame.AppendMuxFrame(nil, frame.MuxFrame{Kind: frame.KindData, Flags: frame.FlagMore, ID: 1, Body: []byte("PI")})
	data = frame.AppendMux(data, frame.KindData, 1, []byte("NG"))
	end := frame.AppendMux(nil, frame.KindEnd, 1, nil)
	f.Add(concat(open, data, end), uint16(7))
	f.Add(concat(open, frame.AppendWindow(nil, 1, 1<<20), data), uint16(20))
	f.Add(concat(open, frame.AppendMux(nil, frame.KindCancel, 1, nil), data), uint16(3))
	f.Add(concat(open, open), uint16(0))
	f.Add(concat(open, end, end, data), uint16(30))
	f.Add(concat(open, frame.AppendMux(nil, frame.KindRequest, 2, []byte("PING")), data), uint16(11))
	h := newMuxSpecHandler()
	close(h.release)
	_, addr := testserver.Start(f, muxSpecStreams{h}, server.Config{Limits: fuzzLimits, ReadTimeout: 2 * time.Second})
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		splitExchange(t, addr, frame.AppendPreface(nil), data, split)
	})
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
