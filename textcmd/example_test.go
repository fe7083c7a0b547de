package textcmd_test

import (
	"fmt"
	"strings"

	"github.com/tcpez/tcpez/textcmd"
)

func ExampleParseMessage() {
	buf := []byte("set greeting 0 0 5\r\nhello\r\nget greeting\r\n")
	var m textcmd.Message
	for len(buf) > 0 {
		rest, ok, err := textcmd.ParseMessage(buf, textcmd.Memcached, textcmd.Limits{}, &m)
		if !ok || err != nil {
			fmt.Println(ok, err)
			return
		}
		fmt.Printf("%s %q data=%q\n", m.Name, m.Args, m.Data)
		buf = rest
	}
	// Output:
	// set ["greeting" "0" "0" "5"] data="hello"
	// get ["greeting"] data=""
}

func ExampleReader_ReadResponse() {
	r := textcmd.NewReader(strings.NewReader("VALUE a 0 1\r\nx\r\nVALUE b 0 2\r\nyz\r\nEND\r\nSTORED\r\n"), textcmd.Memcached, textcmd.Limits{})
	for range 2 {
		_, parts, err := r.ReadResponse(nil, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(len(parts), "parts, closed by", string(parts[len(parts)-1].Name))
	}
	// Output:
	// 3 parts, closed by END
	// 1 parts, closed by STORED
}
