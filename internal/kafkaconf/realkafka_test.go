package kafkaconf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// secureListener is the SASL_SSL listener of a real broker, as
// scripts/realkafka.sh starts it (a CA of its own, SCRAM-SHA-512).
func secureListener(t *testing.T) Config {
	t.Helper()
	brokers := os.Getenv("USAGESTREAM_TEST_SASL_BROKERS")
	if brokers == "" {
		t.Skip("needs a real SASL_SSL listener: set USAGESTREAM_TEST_SASL_BROKERS, _CA, _USER, _PASSWORD " +
			"(scripts/realkafka.sh start prints them; scripts/test.d/60-realkafka.sh sets them)")
	}
	c := Config{
		Brokers: strings.Split(brokers, ","), TLS: true, TLSCA: os.Getenv("USAGESTREAM_TEST_SASL_CA"),
		SASLMechanism: "SCRAM-SHA-512", SASLUser: os.Getenv("USAGESTREAM_TEST_SASL_USER"),
		SASLPassword: os.Getenv("USAGESTREAM_TEST_SASL_PASSWORD"),
	}
	if c.TLSCA == "" || c.SASLUser == "" || c.SASLPassword == "" {
		t.Fatal("USAGESTREAM_TEST_SASL_BROKERS is set: USAGESTREAM_TEST_SASL_CA, _USER and _PASSWORD must be too")
	}
	return c
}

// TestRealKafkaTLSAndSCRAM: with the right CA and password a record goes to
// a real Kafka over SASL_SSL and comes back; everything else is refused
// with an error that says what to check.
func TestRealKafkaTLSAndSCRAM(t *testing.T) {
	good := secureListener(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var r [6]byte
	_, _ = rand.Read(r[:])
	topic := "t" + hex.EncodeToString(r[:]) + ".sasl-roundtrip"
	cl, err := good.NewClient(ctx, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("TLS + SCRAM-SHA-512 with the right CA and password: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("creating %s over SASL_SSL: %v", topic, err)
	}
	defer func() { _, _ = adm.DeleteTopics(context.Background(), topic) }()
	want := "over SASL_SSL " + hex.EncodeToString(r[:])
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(want)}).FirstErr(); err != nil {
		t.Fatalf("producing over SASL_SSL: %v", err)
	}
	fs := cl.PollRecords(ctx, 1)
	if err := fs.Err0(); err != nil {
		t.Fatalf("consuming over SASL_SSL: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != want {
		t.Fatalf("read back %v, want one record %q", recs, want)
	}

	_, unknownCA := throwAwayCA(t)
	refused := []struct {
		name string
		edit func(*Config)
		says []string
	}{
		{"wrong password", func(c *Config) { c.SASLPassword += "x" },
			[]string{`refused the SASL SCRAM-SHA-512 login of user "` + good.SASLUser + `"`, "USAGESTREAM_SASL_PASSWORD"}},
		{"unknown user", func(c *Config) { c.SASLUser = "nobody" },
			[]string{`refused the SASL SCRAM-SHA-512 login of user "nobody"`}},
		{"mechanism the broker does not offer", func(c *Config) { c.SASLMechanism = "SCRAM-SHA-256" },
			[]string{"refused the SASL SCRAM-SHA-256 login"}},
		{"CA that did not sign the broker certificate", func(c *Config) { c.TLSCA = unknownCA },
			[]string{"cannot reach Kafka at " + strings.Join(good.Brokers, ","), "TLS", "certificate signed by unknown authority"}},
		{"system CAs only", func(c *Config) { c.TLSCA = "" },
			[]string{"cannot reach Kafka at", "certificate signed by unknown authority"}},
		{"SASL without TLS", func(c *Config) { c.TLS = false },
			[]string{"cannot reach Kafka at", "plaintext connection speaking to a tls endpoint"}},
		{"TLS without SASL", func(c *Config) { c.SASLMechanism, c.SASLUser, c.SASLPassword = "", "", "" },
			[]string{"cannot reach Kafka at", "SASL"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			start := time.Now()
			cl, err := c.NewClient(ctx)
			if err == nil {
				cl.Close()
				t.Fatal("connected; want a refusal")
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
			if strings.Contains(err.Error(), good.SASLPassword) {
				t.Errorf("error shows the password: %v", err)
			}
			t.Logf("refused in %s: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}
