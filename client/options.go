package client

import (
	"crypto/tls"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/stats"
)

// Option sets a field of the Config that New builds.
type Option func(*Config)

// WithConfig replaces the whole Config; options after it still apply.
func WithConfig(cfg Config) Option { return func(c *Config) { *c = cfg } }

// WithConnsPerAddr sets Config.ConnsPerAddr.
func WithConnsPerAddr(n int) Option { return func(c *Config) { c.ConnsPerAddr = n } }

// WithLazyDial sets Config.LazyDial.
func WithLazyDial() Option { return func(c *Config) { c.LazyDial = true } }

// WithTLS sets Config.TLS.
func WithTLS(cfg *tls.Config) Option { return func(c *Config) { c.TLS = cfg } }

// WithDialTimeout sets Config.DialTimeout.
func WithDialTimeout(d time.Duration) Option { return func(c *Config) { c.DialTimeout = d } }

// WithResolver sets Config.Resolver.
func WithResolver(r Resolver) Option { return func(c *Config) { c.Resolver = r } }

// WithBalancer sets Config.Balancer.
func WithBalancer(b Balancer) Option { return func(c *Config) { c.Balancer = b } }

// WithMaxInFlight sets Config.MaxInFlight.
func WithMaxInFlight(n int) Option { return func(c *Config) { c.MaxInFlight = n } }

// WithLimits sets Config.Limits.
func WithLimits(l frame.Limits) Option { return func(c *Config) { c.Limits = l } }

// WithMaxRetries sets Config.MaxRetries.
func WithMaxRetries(n int) Option { return func(c *Config) { c.MaxRetries = n } }

// WithRetryBackoff sets Config.RetryBackoff.
func WithRetryBackoff(b Backoff) Option { return func(c *Config) { c.RetryBackoff = b } }

// WithReconnectBackoff sets Config.ReconnectBackoff.
func WithReconnectBackoff(b Backoff) Option { return func(c *Config) { c.ReconnectBackoff = b } }

// WithWaitForConnection sets Config.WaitForConnection.
func WithWaitForConnection() Option { return func(c *Config) { c.WaitForConnection = true } }

// WithDrainTimeout sets Config.DrainTimeout.
func WithDrainTimeout(d time.Duration) Option { return func(c *Config) { c.DrainTimeout = d } }

// WithOnStateChange sets Config.OnStateChange.
func WithOnStateChange(f func(StateEvent)) Option { return func(c *Config) { c.OnStateChange = f } }

// WithStats sets Config.Stats.
func WithStats(r stats.Recorder) Option { return func(c *Config) { c.Stats = r } }

// WithObserver sets Config.Observer.
func WithObserver(f func(CallInfo)) Option { return func(c *Config) { c.Observer = f } }

// WithHealthCheck sets Config.HealthCheck.
func WithHealthCheck(h HealthCheck) Option { return func(c *Config) { c.HealthCheck = h } }

// WithOutlierEjection sets Config.OutlierFailures and Config.OutlierBackoff.
func WithOutlierEjection(failures int, b Backoff) Option {
	return func(c *Config) { c.OutlierFailures, c.OutlierBackoff = failures, b }
}
