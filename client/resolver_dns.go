package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultDNSInterval is how often a DNSResolver looks its name up again
// when DNSResolver.Interval is zero.
const DefaultDNSInterval = 30 * time.Second

// StatResolveErrors counts the failed lookups of a DNSResolver.
const StatResolveErrors = "client.resolve_errors"

// dnsLookupTimeout bounds one round of lookups.
const dnsLookupTimeout = 10 * time.Second

// DNSResolver is a Resolver that finds the servers in DNS and looks again
// every Interval, reporting the set when it changes. Name is either
//
//   - "host:port": every A and AAAA record of host, each with port, as for
//     a Kubernetes headless Service; or
//   - "_service._proto.name": the SRV records of name, each target resolved
//     to its A and AAAA records, each with the record's port. Priority and
//     weight are ignored: every target is used.
//
// A failed lookup keeps the last set: a DNS outage never takes servers
// away. It is counted under StatResolveErrors, given to OnError, and
// tried again sooner than Interval. Until the first lookup succeeds calls
// wait, as for a first dial; once one has failed they fail with
// ErrNoConnection wrapping its error. Addresses that leave the set are
// drained, new ones dialled (see Resolver). TTLs are not read: Interval
// alone paces the lookups.
type DNSResolver struct {
	// Name is "host:port" or "_service._proto.name", as above.
	Name string
	// Interval between lookups. Zero or less: DefaultDNSInterval.
	Interval time.Duration
	// NetResolver does the lookups. Default net.DefaultResolver.
	NetResolver *net.Resolver
	// OnError, when set, is told of every failed lookup.
	OnError func(error)
}

// Watch looks Name up until ctx ends. It returns at once, with an error
// wrapping ErrInvalidConfig, only for a Name of neither form.
func (r DNSResolver) Watch(ctx context.Context, u Updater) error {
	q, err := parseDNSName(r.Name)
	if err != nil {
		return err
	}
	if r.NetResolver != nil {
		q.nr = r.NetResolver
	}
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultDNSInterval
	}
	retry := Backoff{Base: min(time.Second, interval), Max: interval}
	var (
		last     []string
		known    bool // last was reported
		failures int  // lookups failed in a row
	)
	for {
		lctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
		addrs, err := q.lookup(lctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if len(addrs) == 0 {
			failures++
		} else {
			if !known || !slices.Equal(addrs, last) {
				known, last = true, addrs
				u.Update(addrs)
			}
			failures = 0
		}
		if err != nil {
			// After the update: a lookup that found some addresses
			// along with its error must not fail calls waiting for them.
			r.failed(u, err)
		}
		wait := interval
		if failures > 0 {
			wait = retry.wait(failures)
		}
		if !sleep(ctx, nil, wait) {
			return nil
		}
	}
}

func (r DNSResolver) failed(u Updater, err error) {
	err = fmt.Errorf("tcpez/client: dns %s: %w", r.Name, err)
	if r.OnError != nil {
		r.OnError(err)
	}
	u.Error(err)
}

// dnsQuery is a parsed DNSResolver.Name.
type dnsQuery struct {
	nr   *net.Resolver
	host string
	port uint16
	srv  bool
	// targets holds each SRV target's last good addresses, kept while a
	// lookup of that target fails.
	targets map[string][]string
}

func parseDNSName(name string) (*dnsQuery, error) {
	q := &dnsQuery{nr: net.DefaultResolver}
	if host, port, err := net.SplitHostPort(name); err == nil {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 || host == "" {
			return nil, fmt.Errorf("%w: DNS name %q: want host:port with a numeric port", ErrInvalidConfig, name)
		}
		q.host, q.port = host, uint16(p)
		return q, nil
	}
	if strings.HasPrefix(name, "_") && strings.Count(name, ".") >= 2 {
		q.host, q.srv = name, true
		return q, nil
	}
	return nil, fmt.Errorf("%w: DNS name %q: want host:port or _service._proto.name", ErrInvalidConfig, name)
}

// lookup returns the sorted address set. An error with addresses is a
// partial failure: some SRV targets kept their last good addresses or,
// having none, were left out.
func (q *dnsQuery) lookup(ctx context.Context) ([]string, error) {
	if !q.srv {
		ips, err := q.nr.LookupNetIP(ctx, "ip", q.host)
		if err != nil {
			return nil, err
		}
		return addrsOf(nil, ips, q.port), nil
	}
	_, srvs, err := q.nr.LookupSRV(ctx, "", "", q.host)
	if len(srvs) == 0 {
		if err == nil {
			err = errors.New("no SRV records")
		}
		return nil, err
	}
	var (
		addrs []string
		errs  = []error{err} // Go reports malformed records with the good ones
		seen  = make(map[string][]string, len(srvs))
	)
	for _, s := range srvs {
		if s.Target == "." || s.Port == 0 {
			continue // "." means: no service here
		}
		target := net.JoinHostPort(s.Target, strconv.Itoa(int(s.Port)))
		if _, ok := seen[target]; ok {
			continue
		}
		these := q.targets[target]
		ips, err := q.nr.LookupNetIP(ctx, "ip", s.Target)
		if err == nil {
			these = addrsOf(nil, ips, s.Port)
		} else {
			errs = append(errs, err)
		}
		seen[target] = these
		addrs = append(addrs, these...)
	}
	q.targets = seen // forget the targets no longer listed
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	err = errors.Join(errs...)
	if len(addrs) == 0 && err == nil {
		err = errors.New("no usable SRV targets")
	}
	return addrs, err
}

// addrsOf appends ip:port for each ip, sorted and without duplicates.
func addrsOf(dst []string, ips []netip.Addr, port uint16) []string {
	for _, ip := range ips {
		dst = append(dst, netip.AddrPortFrom(ip.Unmap(), port).String())
	}
	slices.Sort(dst)
	return slices.Compact(dst)
}
