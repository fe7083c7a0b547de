package client

// PipelineLaysOutMux reports whether p lays its frames out for the
// multiplexed mode.
func PipelineLaysOutMux(p *Pipeline) bool { return p.mux }
