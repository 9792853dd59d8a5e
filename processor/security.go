package processor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// connection holds what both the reader and the writer need to reach the
// brokers.
type connection struct {
	tls  *tls.Config
	sasl sasl.Mechanism
}

func (c *Config) connection() (connection, error) {
	var conn connection
	if t := c.TLS; t != nil {
		cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if t.CAFile != "" {
			pem, err := os.ReadFile(c.resolve(t.CAFile))
			if err != nil {
				return conn, fmt.Errorf("tls.ca_file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return conn, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", t.CAFile)
			}
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.resolve(t.CertFile), c.resolve(t.KeyFile))
			if err != nil {
				return conn, fmt.Errorf("tls.cert_file/key_file: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		conn.tls = cfg
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case "PLAIN":
			conn.sasl = plain.Mechanism{Username: s.Username, Password: s.Password}
		case "SCRAM-SHA-256", "SCRAM-SHA-512":
			algo := scram.SHA256
			if s.Mechanism == "SCRAM-SHA-512" {
				algo = scram.SHA512
			}
			m, err := scram.Mechanism(algo, s.Username, s.Password)
			if err != nil {
				return conn, fmt.Errorf("sasl: %w", err)
			}
			conn.sasl = m
		}
	}
	return conn, nil
}

func (conn connection) dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: conn.tls, SASLMechanism: conn.sasl}
}

func (conn connection) transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: 10 * time.Second, TLS: conn.tls, SASL: conn.sasl, ClientID: "paw"}
}
