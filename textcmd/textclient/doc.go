// Package textclient calls a text command server (docs/TEXTPROTOCOL.md),
// such as a textserver or memcached, through the tcpez client: pooled,
// load-balanced connections on which concurrent calls are pipelined.
//
//	c, err := textclient.New([]string{"127.0.0.1:11211"}, textclient.Config{Grammar: textcmd.Memcached})
//	resp, err := c.Call(ctx, textclient.Cmd("set").Arg("k").Arg("0").Arg("0").Count().Data([]byte("hello")))
//	// resp.Status() == "STORED"
//	resp, err = c.Call(ctx, textclient.Cmd("get").Arg("k"))
//	// resp.Parts[0]: VALUE k 0 5, Data "hello"; resp.Status() == "END"
//
// A Request is built token by token; Count marks where the byte count of
// its data block goes, at any position. Call sends it and waits for its
// whole response, multi-part or not; Go starts it and returns a future.
// Calls from many goroutines share connections and are pipelined: their
// requests are coalesced into few writes and their responses read in
// order. A response whose status is one of Config.ErrorStatuses is
// returned with a *StatusError.
//
// Every request must get exactly one response: options that silence a
// server (memcached's noreply) would leave the client waiting for the
// wrong answer, and Build refuses a "noreply" token.
package textclient
