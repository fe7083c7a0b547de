package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// errUsage reports bad flags; the flag package has printed why already.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if err == errUsage {
		return 2
	}
	return 1
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tcpez "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args; the flag package has already printed why it failed
// (or the help that -h asked for), so either ends as a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if fs.Parse(args) != nil {
		return errUsage
	}
	return nil
}

// certPool reads PEM certificates from path.
func certPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return pool, nil
}

// serverTLS builds the serve command's TLS config: a certificate, and
// client certificates required when a CA file is given.
func serverTLS(cert, key, clientCA string) (*tls.Config, error) {
	if cert == "" && key == "" {
		if clientCA != "" {
			return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		if cfg.ClientCAs, err = certPool(clientCA); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
