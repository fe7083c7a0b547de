package vtpb_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/bench/vtpb"
)

// BenchmarkCodec compares, on the echo request, the two ways protoserver
// encodes and decodes a message: protobuf-go's reflection ("proto", what
// every message gets) and the code vtprotobuf generates ("vt", what
// protoserver uses when the message has it). Encoding appends to a reused
// buffer and decoding goes into a reused message, as protoserver does, so
// what remains is the codec's own work and the copy of the bytes field
// (none for vt-unsafe, which aliases it).
//
//	cd bench && go test -run '^$' -bench Codec -benchmem -count 6 ./vtpb/ > codec.txt
//	benchstat -col /codec codec.txt
func BenchmarkCodec(b *testing.B) {
	for _, size := range []int{16, 4 << 10, 1 << 20} {
		msg := &vtpb.EchoRequest{Payload: make([]byte, size)}
		enc, err := proto.Marshal(msg)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, len(enc))
		into := new(vtpb.EchoRequest)
		b.Run(fmt.Sprintf("marshal/size=%d/codec=proto", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				n := proto.Size(msg)
				buf, _ = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf[:0], msg)
				if len(buf) != n {
					b.Fatal(len(buf), n)
				}
			}
		})
		b.Run(fmt.Sprintf("marshal/size=%d/codec=vt", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				n := msg.SizeVT()
				if _, err := msg.MarshalToSizedBufferVT(buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("unmarshal/size=%d/codec=proto", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := proto.Unmarshal(enc, into); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("unmarshal/size=%d/codec=vt", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				proto.Reset(into)
				if err := into.UnmarshalVT(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
		// What protoserver does for a reused request (RequestReuse): the
		// payload points into enc, not copied.
		b.Run(fmt.Sprintf("unmarshal/size=%d/codec=vt-unsafe", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				proto.Reset(into)
				if err := into.UnmarshalVTUnsafe(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
