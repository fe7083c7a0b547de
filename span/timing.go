package span

import "time"

// A timing holds one measurement per name: Finish and Observe replace what
// an earlier Finish or Observe of the same name recorded. Steps that repeat
// within a request and should be told apart need names of their own.

// Start starts timing name, now. Starting a name that is already running
// restarts it.
func (s *Span) Start(name string) {
	if s == nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	t := s.timing(name)
	t.start = now
	t.running = true
	s.mu.Unlock()
}

// Finish stops timing name and returns the time since its Start, which
// becomes the recorded duration. A name that was never started records 0,
// so that a missing Start shows up in the output rather than vanishing.
// Finishing a name that is no longer running changes nothing and returns
// the duration already recorded.
func (s *Span) Finish(name string) time.Duration {
	if s == nil {
		return 0
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.timing(name)
	if t.running {
		t.d = now.Sub(t.start)
		t.running = false
	}
	t.done = true
	return t.d
}

// Observe records d as the duration of name, for a step timed elsewhere,
// such as by a client library. It cancels a running Start of name.
func (s *Span) Observe(name string, d time.Duration) {
	if s == nil {
		return
	}
	s.mu.Lock()
	t := s.timing(name)
	t.d = d
	t.running = false
	t.done = true
	s.mu.Unlock()
}

// Duration returns the recorded duration of name, or 0 if name was never
// finished or observed.
func (s *Span) Duration(name string) time.Duration {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.timings {
		if s.timings[i].name == name {
			return s.timings[i].d
		}
	}
	return 0
}

// timing returns the entry for name, adding it if needed. s.mu must be
// held, and the pointer must not be kept past unlocking: an append may move
// the entries.
func (s *Span) timing(name string) *timing {
	for i := range s.timings {
		if s.timings[i].name == name {
			return &s.timings[i]
		}
	}
	s.timings = append(s.timings, timing{name: name})
	s.touchMeasured()
	return &s.timings[len(s.timings)-1]
}
