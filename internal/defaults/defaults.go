// Package defaults holds the rule every tcpez Config follows: a field left
// at its zero value takes its documented default.
//
//	c.MaxConns = defaults.Or(c.MaxConns, DefaultMaxConns)
package defaults

// Or returns def when v is its type's zero value, and v otherwise.
func Or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
