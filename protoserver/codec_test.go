package protoserver

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
)

// vtStatus is a Status with the methods vtprotobuf generates, done
// here through protobuf-go and counted, to show which path encodes it.
type vtStatus struct {
	tcpezv1.Status
	calls *int
}

func (m *vtStatus) SizeVT() int {
	*m.calls++
	return proto.Size(&m.Status)
}

func (m *vtStatus) MarshalToSizedBufferVT(b []byte) (int, error) {
	*m.calls++
	enc, err := proto.Marshal(&m.Status)
	return copy(b[len(b)-len(enc):], enc), err
}

func (m *vtStatus) UnmarshalVT(b []byte) error {
	*m.calls++
	return proto.UnmarshalOptions{Merge: true}.Unmarshal(b, &m.Status)
}

// TestCodecUsesVTMethods: a message with vtprotobuf's methods is encoded
// and decoded by them, to the same bytes and values as protobuf-go's; a
// decode that replaces drops what the message held.
func TestCodecUsesVTMethods(t *testing.T) {
	calls := 0
	in := &vtStatus{Status: tcpezv1.Status{Code: 5, Message: "text"}, calls: &calls}
	want, err := proto.Marshal(&in.Status)
	if err != nil {
		t.Fatal(err)
	}
	got, err := marshalAppend([]byte("prefix"), in)
	if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("marshalAppend: %q, %v; want prefix%q", got, err, want)
	}
	out := &vtStatus{Status: tcpezv1.Status{Code: 7, Message: "old"}, calls: &calls}
	if err := unmarshalReset(want[:2], out); err != nil { // the code only
		t.Fatal(err)
	}
	if out.Code != 5 || out.Message != "" {
		t.Fatalf("unmarshalReset kept old fields: %v", &out.Status)
	}
	if err := unmarshalNew(want, out); err != nil || !proto.Equal(&out.Status, &in.Status) {
		t.Fatalf("unmarshalNew: %v, %v", &out.Status, err)
	}
	if calls != 4 {
		t.Fatalf("%d calls of the VT methods, want 4", calls)
	}
}

// vtPooled is a vtStatus with the ResetVT of vtprotobuf's pool feature,
// which keeps the memory of a field for the next decoding.
type vtPooled struct {
	vtStatus
	resets int
}

func (m *vtPooled) ResetVT() {
	m.resets++
	details := m.Details[:0]
	m.Reset()
	m.Details = details
}

// TestResetKeepsPooledMemory: a message reused with vtprotobuf's pool
// feature is reset with its ResetVT, and a plain one with proto.Reset.
func TestResetKeepsPooledMemory(t *testing.T) {
	calls := 0
	m := &vtPooled{vtStatus: vtStatus{Status: tcpezv1.Status{Code: 7, Message: "old"}, calls: &calls}}
	m.Details = append(m.Details, nil)
	enc, err := proto.Marshal(&tcpezv1.Status{Code: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshalReset(enc, m); err != nil {
		t.Fatal(err)
	}
	if m.resets != 1 || m.Code != 5 || m.Message != "" || len(m.Details) != 0 || cap(m.Details) == 0 {
		t.Fatalf("after unmarshalReset: %d ResetVT, %v, details cap %d", m.resets, &m.Status, cap(m.Details))
	}
	plain := &tcpezv1.Status{Code: 7, Message: "old"}
	reset(plain)
	if plain.Code != 0 || plain.Message != "" {
		t.Fatalf("reset kept %v", plain)
	}
}
