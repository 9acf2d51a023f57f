// Package kafkaconf turns the connection flags every command shares (brokers,
// registry, TLS, SASL/SCRAM, topic prefix) into franz-go and registry clients.
// The zero value points at the embedded default that `usagestream run` serves.
package kafkaconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/usagestream/usagestream/internal/loglevel"
)

// Embedded default addresses: where `usagestream run` listens when no brokers
// are configured, and where the other commands look when none are given.
const (
	DefaultBroker   = "127.0.0.1:9092"
	DefaultRegistry = "http://127.0.0.1:8081"
)

// Config is the connection configuration, as kong flags with environment
// variables. Secrets are accepted from the environment so they stay out of
// shell history and process listings.
type Config struct {
	Brokers          []string      `name:"brokers" env:"USAGESTREAM_BROKERS" sep:"," placeholder:"HOST:PORT" help:"Kafka bootstrap brokers. Empty: the embedded broker of 'usagestream run' (${default_broker})."`
	Registry         string        `name:"registry" env:"USAGESTREAM_REGISTRY" placeholder:"URL" help:"Confluent-compatible schema registry URL (Apicurio: .../apis/ccompat/v7). Empty: the embedded registry (${default_registry})."`
	RegistryUser     string        `name:"registry-user" env:"USAGESTREAM_REGISTRY_USER" help:"Registry basic-auth user."`
	RegistryPassword string        `name:"registry-password" env:"USAGESTREAM_REGISTRY_PASSWORD" help:"Registry basic-auth password (prefer the environment variable)."`
	RegistryTimeout  time.Duration `name:"registry-timeout" env:"USAGESTREAM_REGISTRY_TIMEOUT" default:"10s" help:"How long the registry may take to answer a request."`
	TopicPrefix      string        `name:"topic-prefix" env:"USAGESTREAM_TOPIC_PREFIX" default:"usagestream." help:"Prefix of every topic name."`

	TLS           bool   `name:"tls" env:"USAGESTREAM_KAFKA_TLS" help:"Connect to Kafka with TLS."`
	TLSCA         string `name:"tls-ca" env:"USAGESTREAM_KAFKA_TLS_CA" placeholder:"PEM" help:"CA certificates to trust (PEM file); default: the system pool."`
	TLSCert       string `name:"tls-cert" env:"USAGESTREAM_KAFKA_TLS_CERT" placeholder:"PEM" help:"Client certificate for mutual TLS."`
	TLSKey        string `name:"tls-key" env:"USAGESTREAM_KAFKA_TLS_KEY" placeholder:"PEM" help:"Client key for mutual TLS."`
	TLSServerName string `name:"tls-server-name" env:"USAGESTREAM_KAFKA_TLS_SERVER_NAME" help:"Server name to verify, when it differs from the broker host."`

	SASLMechanism string `name:"sasl-mechanism" env:"USAGESTREAM_SASL_MECHANISM" enum:",SCRAM-SHA-256,SCRAM-SHA-512,PLAIN" default:"" help:"SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN."`
	SASLUser      string `name:"sasl-user" env:"USAGESTREAM_SASL_USER" help:"SASL user."`
	SASLPassword  string `name:"sasl-password" env:"USAGESTREAM_SASL_PASSWORD" help:"SASL password (prefer the environment variable)."`

	// KafkaLogLevel is the Kafka client's own level, apart from
	// --log-level: the client's info lines (five per transaction and stage)
	// would drown the program's.
	KafkaLogLevel string `name:"kafka-log-level" env:"USAGESTREAM_KAFKA_LOG_LEVEL" enum:"debug,info,warn,error,none" default:"warn" help:"Log level of the Kafka client library (franz-go), apart from --log-level."`
}

// ClientLogger is the franz-go logger of a client whose program logs to l:
// l's destination and attributes, the component kgo, at --kafka-log-level
// (warn when unset), whatever l's own level.
func (c Config) ClientLogger(l *slog.Logger) kgo.Logger {
	lv, err := loglevel.Parse(c.KafkaLogLevel, slog.LevelWarn)
	if err != nil {
		lv = slog.LevelWarn
	}
	return kslog.New(loglevel.Override(l.With("component", "kgo"), lv))
}

// Vars are the kong interpolation variables the help texts use.
func Vars() map[string]string {
	return map[string]string{"default_broker": DefaultBroker, "default_registry": DefaultRegistry}
}

// Embedded reports whether no brokers were configured.
func (c Config) Embedded() bool { return len(c.Brokers) == 0 }

// BrokerList is the configured brokers, or the embedded default.
func (c Config) BrokerList() []string {
	if len(c.Brokers) == 0 {
		return []string{DefaultBroker}
	}
	return c.Brokers
}

// RegistryURL is the configured registry, or the embedded default. It may
// carry user info (http://user:password@host): never log it or put it in an
// error; use RedactedRegistryURL.
func (c Config) RegistryURL() string {
	if c.Registry == "" {
		return DefaultRegistry
	}
	return strings.TrimRight(c.Registry, "/")
}

// TLSConfig builds the TLS configuration, or nil when TLS is off.
func (c Config) TLSConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("reading the TLS CA file given by --tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", c.TLSCA)
		}
		tc.RootCAs = pool
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate (--tls-cert, --tls-key): %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// MetadataMinAge is the shortest time between two metadata requests of a
// client (franz-go's default is 5 s). franz-go retries a produce batch the
// broker answered with a retriable error only after a metadata refresh, and
// refreshes at most once per this age. Under Kafka 4's transactions v2 the
// first batch of a transaction to a partition is answered
// CONCURRENT_TRANSACTIONS while the previous transaction's markers are still
// being written, which happens when several stages commit back to back on
// one broker; with the default age such a retry waited up to 5 s (issue 20,
// docs/capacity.md#out-of-order-sequence-answers). The Java client waits
// retry.backoff.ms (100 ms) there.
const MetadataMinAge = 250 * time.Millisecond

// Opts returns the franz-go options for connecting: seeds, TLS and SASL,
// and the metadata refresh bound (MetadataMinAge).
func (c Config) Opts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.BrokerList()...), kgo.MetadataMinAge(MetadataMinAge)}
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch c.SASLMechanism {
	case "":
		if c.SASLUser != "" {
			return nil, errors.New("--sasl-user is set but --sasl-mechanism is not: choose SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
		}
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	default:
		return nil, fmt.Errorf("unknown --sasl-mechanism %q: use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN", c.SASLMechanism)
	}
	return opts, nil
}

// NewClient builds a franz-go client with the connection options plus extra,
// and checks that the cluster answers, so a wrong address or password fails
// here with a message that says what to fix.
func (c Config) NewClient(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("configuring the Kafka client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, c.explain(err)
	}
	return cl, nil
}

func (c Config) explain(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) && (ke == kerr.SaslAuthenticationFailed || ke == kerr.IllegalSaslState || ke == kerr.UnsupportedSaslMechanism) {
		return fmt.Errorf("Kafka at %s refused the SASL %s login of user %q: check --sasl-user and USAGESTREAM_SASL_PASSWORD: %w",
			strings.Join(c.BrokerList(), ","), c.SASLMechanism, c.SASLUser, err)
	}
	if c.SASLMechanism != "" && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		// Some brokers close the connection instead of answering a failed login.
		return fmt.Errorf("Kafka at %s closed the connection during the SASL %s login of user %q: the password is probably wrong (check --sasl-user and USAGESTREAM_SASL_PASSWORD), or the listener does not speak SASL/TLS as configured: %w",
			strings.Join(c.BrokerList(), ","), c.SASLMechanism, c.SASLUser, err)
	}
	if c.Embedded() {
		return fmt.Errorf("cannot reach the embedded Kafka broker at %s: start it with 'usagestream run' in another terminal, or pass --brokers: %w", DefaultBroker, err)
	}
	return fmt.Errorf("cannot reach Kafka at %s: check --brokers, TLS and SASL settings: %w", strings.Join(c.BrokerList(), ","), err)
}

// RedactedRegistryURL is RegistryURL without its user info, for logs and
// errors.
func (c Config) RedactedRegistryURL() string { return Redact(c.RegistryURL()) }

// registryAuth splits RegistryURL into the URL without user info and the
// basic-auth credentials: --registry-user/USAGESTREAM_REGISTRY_PASSWORD when
// set, else the URL's user info. The sr client then never holds the secret
// in its URL, so no error it makes (url.Error, ResponseError) can show it.
func (c Config) registryAuth() (base, user, pass string, auth bool) {
	base = c.RegistryURL()
	if u, err := url.Parse(base); err == nil && u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		auth = true
		u.User = nil
		base = u.String()
	} else if err != nil {
		// Unparsable: strip what looks like user info all the same.
		base = Redact(base)
	}
	if c.RegistryUser != "" {
		user, pass, auth = c.RegistryUser, c.RegistryPassword, true
	}
	return base, user, pass, auth
}

// NewRegistryClient builds the schema registry client.
func (c Config) NewRegistryClient() (*sr.Client, error) {
	base, user, pass, auth := c.registryAuth()
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		for _, b := range c.BrokerList() {
			if strings.EqualFold(u.Host, b) {
				return nil, fmt.Errorf("--registry %s is the address of a Kafka broker (--brokers %s): give the schema registry's URL (the embedded one: %s)", base, b, DefaultRegistry)
			}
		}
	}
	timeout := c.RegistryTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// The whole request is bounded, and so is the wait for the answer's
	// headers: a server that reads the request and never answers (a Kafka
	// broker given as --registry waits for the rest of a 1 GB "request")
	// fails after the timeout with a message saying so.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	opts := []sr.ClientOpt{sr.URLs(base), sr.HTTPClient(&http.Client{Timeout: 3 * timeout, Transport: tr})}
	if auth {
		opts = append(opts, sr.BasicAuth(user, pass))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("configuring the schema registry client for %s: %w", base, RedactError(err))
	}
	return cl, nil
}

// userInfo matches the user info of a URL in free text: a scheme, "//",
// then everything up to the last "@" before the host (Go's url.Parse also
// takes the last "@", so a password holding a raw "@" is covered).
var userInfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@`)

// Redact removes the user info (user:password@) of every URL in s, for text
// that goes to logs or errors: a registry URL, an error of a library that
// quotes the URL it called.
func Redact(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userInfo.ReplaceAllString(s, "$1")
}

// RedactError wraps err so that its message has no URL user info (see
// Redact); errors.Is and errors.As still see err. Nil stays nil.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	return redacted{err}
}

type redacted struct{ err error }

func (r redacted) Error() string { return Redact(r.err.Error()) }
func (r redacted) Unwrap() error { return r.err }
