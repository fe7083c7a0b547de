package protoserver

// Hooks for the external tests' benchmarks.
var (
	AppendRequestForTest = encodeCall
	DecodeAnswerForTest  = decodeAnswer
	MustMarshalForTest   = mustMarshal
)
