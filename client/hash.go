package client

import "context"

type keyCtxKey struct{}

// WithKey gives the calls made with the returned context a key: with the
// Rendezvous balancer every call with the same key goes to the same
// address while the address set is stable. Other balancers ignore it.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtxKey{}, key)
}

func keyOf(ctx context.Context) (string, bool) {
	key, ok := ctx.Value(keyCtxKey{}).(string)
	return key, ok
}

// addrConns are the usable connections of one address, with the hash of
// the address that rendezvous hashing scores keys against.
type addrConns struct {
	hash  uint64
	conns []*conn
}

// groupByAddr fills s.byAddr from s.conns, where the connections of an
// address lie next to each other (rebuild collects them endpoint by
// endpoint).
func (s *snapshot) groupByAddr() {
	for i := 0; i < len(s.conns); {
		j := i + 1
		for j < len(s.conns) && s.conns[j].ep == s.conns[i].ep {
			j++
		}
		s.byAddr = append(s.byAddr, addrConns{hash: hashString(s.conns[i].addr), conns: s.conns[i:j:j]})
		i = j
	}
	for _, addr := range s.connecting {
		s.byAddr = append(s.byAddr, addrConns{hash: hashString(addr)})
	}
}

// chooseByKey takes a slot on the address with the highest rendezvous
// score for key among those with a usable connection. When that address
// is at MaxInFlight, or still making its first connection, the caller
// waits for it rather than spill the key to another cache.
func (c *Client) chooseByKey(s *snapshot, key string) (cn, alive *conn) {
	kh := hashString(key)
	best, bestScore := 0, uint64(0)
	for i := range s.byAddr {
		score := rendezvousScore(kh, s.byAddr[i].hash)
		if i == 0 || score > bestScore || (score == bestScore && s.byAddr[i].hash > s.byAddr[best].hash) {
			best, bestScore = i, score
		}
	}
	conns := s.byAddr[best].conns
	switch len(conns) {
	case 0:
		return nil, nil // connecting: wait for the next snapshot
	case 1:
		return acquireFrom(conns, 0)
	}
	return acquireFrom(conns, int(c.rr.Add(1)%uint64(len(conns))))
}

// hashString is 64-bit FNV-1a. It must give the same value in every
// process, so that clients agree on where a key lives: no seeded hash.
func hashString(s string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime64
	}
	return h
}

// rendezvousScore is the weight of an address for a key: the two hashes
// combined and put through the SplitMix64 finalizer, so that the scores
// of one key on different addresses are independent and uniform.
func rendezvousScore(keyHash, addrHash uint64) uint64 {
	x := keyHash ^ addrHash
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
