// Package devbroker runs an embedded Kafka-protocol broker (kfake) for
// demos and tests. It is not a production broker: it is a single process,
// keeps its data in memory unless given a folder, and has no replication.
package devbroker

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config describes the broker. Zero values take the defaults.
type Config struct {
	// Listen is host:port. Default: 127.0.0.1:0 (a free port).
	Listen string
	// DataDir persists topics, offsets and groups across restarts.
	// Default: in memory only.
	DataDir string
	// Topics are created at start, as name:partitions (partitions default 1).
	Topics []string
	// SASL users as mechanism:user:password (PLAIN, SCRAM-SHA-256,
	// SCRAM-SHA-512); any user turns SASL on.
	SASL []string
	// TLS, when set, makes the listener speak TLS only.
	TLS *tls.Config
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	once sync.Once
}

// ParseTopics reads "logs:3,alerts" into name → partitions.
func ParseTopics(spec string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(spec, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if _, _, err := splitTopic(t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func splitTopic(t string) (string, int32, error) {
	name, parts, found := strings.Cut(t, ":")
	if name == "" {
		return "", 0, fmt.Errorf("topic %q: empty name", t)
	}
	if !found {
		return name, 1, nil
	}
	n, err := strconv.Atoi(parts)
	if err != nil || n < 1 || n > 1000 {
		return "", 0, fmt.Errorf("topic %q: partitions must be 1 to 1000", t)
	}
	return name, int32(n), nil
}

// Start starts the broker.
func Start(cfg Config) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("listen %q: bad port", cfg.Listen)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("paw-dev"),
		// kfake listens on 127.0.0.1; honour the host asked for.
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(addr)
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
	}
	for _, t := range cfg.Topics {
		name, parts, err := splitTopic(t)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kfake.SeedTopics(parts, name))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if len(cfg.SASL) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range cfg.SASL {
			parts := strings.SplitN(u, ":", 3)
			if len(parts) != 3 {
				return nil, fmt.Errorf("sasl user %q: want mechanism:user:password", u)
			}
			opts = append(opts, kfake.Superuser(parts[0], parts[1], parts[2]))
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start broker on %s: %w", cfg.Listen, err)
	}
	return &Broker{c: c}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.c.ListenAddrs()[0] }

// Close stops the broker; with a data folder its state is flushed there.
// Closing twice is harmless.
func (b *Broker) Close() { b.once.Do(b.c.Close) }
