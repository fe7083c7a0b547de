package client

// PipelineLaysOutMux reports whether p's batch, once something is
// enqueued, lays its frames out for the multiplexed mode.
func PipelineLaysOutMux(p *Pipeline) bool { return p.mux }
