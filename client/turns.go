package client

// turn is how a caller waiting for the writer role is told the outcome:
// one value, sent under conn.mu, true when the role is handed to it,
// false when the connection failed.
type turn chan bool

// turnQueue is the line of callers waiting for the writer role, oldest
// first. Its channels are reused, so waiting allocates nothing once a
// connection has seen as many callers wait at once.
type turnQueue struct {
	line  []turn
	spare []turn
}

func (q *turnQueue) len() int { return len(q.line) }

// push puts a new turn at the end of the line.
func (q *turnQueue) push() turn {
	var t turn
	if n := len(q.spare); n > 0 {
		t, q.spare = q.spare[n-1], q.spare[:n-1]
	} else {
		t = make(turn, 1)
	}
	q.line = append(q.line, t)
	return t
}

// pop takes the oldest turn out of the line; nil when nobody waits.
func (q *turnQueue) pop() turn {
	if len(q.line) == 0 {
		return nil
	}
	t := q.line[0]
	q.cut(0)
	return t
}

// remove takes t out of the line, for a caller that gave up, and reports
// whether it was there; t is then free for reuse.
func (q *turnQueue) remove(t turn) bool {
	for i, u := range q.line {
		if u == t {
			q.cut(i)
			q.recycle(t)
			return true
		}
	}
	return false
}

// cut drops the turn at i from the line.
func (q *turnQueue) cut(i int) {
	copy(q.line[i:], q.line[i+1:])
	q.line[len(q.line)-1] = nil
	q.line = q.line[:len(q.line)-1]
}

// recycle keeps a turn whose value was taken, for a later wait.
func (q *turnQueue) recycle(t turn) { q.spare = append(q.spare, t) }
