package kafkaconf

import (
	"context"
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

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// throwAwayCA makes a CA and a server certificate for 127.0.0.1, and writes
// the CA to a PEM file, as an operator's --tls-ca would be.
func throwAwayCA(t *testing.T) (*tls.Config, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usagestream test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}, MinVersion: tls.VersionTLS12}, caFile
}

func TestTLSAndSCRAM(t *testing.T) {
	srvTLS, caFile := throwAwayCA(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(srvTLS), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "usagestream", "right-password"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	good := Config{Brokers: c.ListenAddrs(), TLS: true, TLSCA: caFile, SASLMechanism: "SCRAM-SHA-512", SASLUser: "usagestream", SASLPassword: "right-password"}
	cl, err := good.NewClient(ctx)
	if err != nil {
		t.Fatalf("TLS + SCRAM-SHA-512 with the right password: %v", err)
	}
	cl.Close()

	bad := good
	bad.SASLPassword = "wrong"
	if _, err := bad.NewClient(ctx); err == nil || !strings.Contains(err.Error(), "SASL SCRAM-SHA-512 login of user \"usagestream\"") {
		t.Fatalf("wrong password: want a clear refusal, got %v", err)
	}

	untrusted := good
	untrusted.TLSCA = ""
	if _, err := untrusted.NewClient(ctx); err == nil {
		t.Fatal("a broker certificate from an unknown CA must be refused")
	}
}

func TestConfigErrorsSayWhatToDo(t *testing.T) {
	if _, err := (Config{SASLUser: "u"}).Opts(); err == nil || !strings.Contains(err.Error(), "--sasl-mechanism") {
		t.Fatalf("user without mechanism: %v", err)
	}
	if _, err := (Config{TLS: true, TLSCA: "/nonexistent.pem"}).Opts(); err == nil || !strings.Contains(err.Error(), "--tls-ca") {
		t.Fatalf("missing CA file: %v", err)
	}
	if got := (Config{}).BrokerList(); len(got) != 1 || got[0] != DefaultBroker {
		t.Fatalf("default brokers %v", got)
	}
}

// TestOptsBoundTheMetadataWait: every client built from Opts refreshes
// metadata, and so retries a batch the broker answered with a retriable
// error, after MetadataMinAge instead of franz-go's 5 s.
func TestOptsBoundTheMetadataWait(t *testing.T) {
	opts, err := (Config{Brokers: []string{"127.0.0.1:1"}}).Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.OptValue(kgo.MetadataMinAge); got != MetadataMinAge || MetadataMinAge > time.Second {
		t.Fatalf("metadata min age %v, want %v (at most 1 s)", got, MetadataMinAge)
	}
}
