package processor_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/pawlogs/paw/internal/devbroker"
	"github.com/pawlogs/paw/processor"
)

func TestParseConfigErrors(t *testing.T) {
	const base = "brokers: [b:9092]\ntopics: [in]\npipeline: p.yaml\ndlq_topic: dlq\n"
	env := map[string]string{"SET": "s3cret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, yaml, want string
	}{
		{"no brokers", "topics: [in]\npipeline: p.yaml\ndlq_topic: dlq\n", "c.yaml:1:1: brokers: at least one"},
		{"broker without port", "brokers: [b]\ntopics: [in]\npipeline: p.yaml\ndlq_topic: dlq\n", `c.yaml:1:11: brokers: "b" needs host:port`},
		{"no dlq", "brokers: [b:9092]\ntopics: [in]\npipeline: p.yaml\n", "dlq_topic: a dead-letter topic is required"},
		{"reads its own output", base + "output_topic: in\n", `topics: "in" is also output_topic`},
		{"unknown key", base + "bogus: 1\n", "c.yaml:5:1:"},
		{"wrong type", base + "max_record_bytes: lots\n", "c.yaml:5:19:"},
		{"bad duration", base + "commit_interval: soon\n", `c.yaml:5:18: time: invalid duration "soon"`},
		{"bad compression", base + "producer: {compression: brotli}\n", "producer.compression: \"brotli\" is not one of none, gzip, snappy, lz4, zstd"},
		{"bad start", base + "start_offset: middle\n", "c.yaml:5:15: start_offset"},
		{"bad device", base + "device: tpu\n", "c.yaml:5:9: device:"},
		{"record limit too close to message limit", base + "max_record_bytes: 1048576\n", "max_record_bytes (1048576) must stay"},
		{"bad sasl", base + "sasl: {mechanism: GSSAPI, username: u, password: p}\n", "sasl.mechanism: \"GSSAPI\""},
		{"sasl env unset", base + "sasl: {mechanism: PLAIN, username: u, password_env: NOPE}\n", "environment variable NOPE is not set"},
		{"sasl both", base + "sasl: {mechanism: PLAIN, username: u, password: p, password_env: SET}\n", "set password or password_env, not both"},
		{"tls missing file", base + "tls: {ca_file: nope.pem}\n", "tls.ca_file:"},
		{"tls cert without key", base + "tls: {cert_file: c.pem}\n", "cert_file and key_file go together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := processor.ParseConfig("c.yaml", []byte(tc.yaml), lookup)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	c, err := processor.ParseConfig("c.yaml", []byte(base+"sasl: {mechanism: SCRAM-SHA-512, username: u, password_env: SET}\n"), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.SASL.Password != "s3cret" || c.GroupID != processor.DefaultGroupID || c.MaxRecordBytes != processor.DefaultMaxRecordBytes || !*c.Reload {
		t.Fatalf("defaults and env secrets not applied: %+v", c)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("brokers: [b:9092]\ntopics: [in]\npipeline: p.yaml\ndlq_topic: dlq\n"))
	f.Add([]byte("brokers: [b:9092]\ntls: {ca_file: x}\nsasl: {mechanism: PLAIN}\n"))
	f.Add([]byte("group: {session_timeout: -1s}\nproducer: {max_in_flight: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := processor.ParseConfig("f.yaml", data, func(string) (string, bool) { return "", false })
		if err == nil && (len(c.Brokers) == 0 || c.DLQTopic == "" || c.MaxRecordBytes <= 0) {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
	})
}

// TestTLSAndSCRAM runs the processor against a broker that takes only TLS
// and SCRAM-SHA-256, with the password from the environment.
func TestTLSAndSCRAM(t *testing.T) {
	dir := t.TempDir()
	serverTLS, caPEM := selfSigned(t)
	writeFile(t, filepath.Join(dir, "ca.pem"), caPEM)
	s := newSetup(t, textPipeline, "", devbroker.Config{TLS: serverTLS, SASL: []string{"SCRAM-SHA-256:paw:pw-from-env"}})
	if err := os.WriteFile(filepath.Join(s.dir, "ca.pem"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAW_TEST_KAFKA_PASSWORD", "pw-from-env")
	s.writeConfig(t, "tls: {ca_file: ca.pem}\nsasl: {mechanism: SCRAM-SHA-256, username: paw, password_env: PAW_TEST_KAFKA_PASSWORD}\n")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	secure := []kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: pool}),
		kgo.SASL(scram.Auth{User: "paw", Pass: "pw-from-env"}.AsSha256Mechanism())}
	const n = 3000
	produce(t, client(t, s.broker.Addr(), secure...), 0, n, 4, textValue)
	r := startProcessor(t, s)
	c := consumeUntil(t, s.broker.Addr(), outputTopics, time.Minute, func(c *consumed) bool { return c.total() >= n }, secure...)
	r.shutdown(t)
	if dups := delivery(t, c, n, destFor); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}

	// A wrong password is reported, not silently retried forever unseen.
	t.Setenv("PAW_TEST_KAFKA_PASSWORD", "wrong")
	cfg, err := processor.LoadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SASL.Password != "wrong" {
		t.Fatal("password not read from the environment")
	}
}

// selfSigned makes a CA-signed certificate for 127.0.0.1.
func selfSigned(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "paw test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
