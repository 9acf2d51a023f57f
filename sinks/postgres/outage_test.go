package postgres

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/testwait"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/sinktest"
)

// proxy forwards TCP connections to target until cut, which drops every
// connection and refuses new ones until heal.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// TestDatabaseOutageIsWaitedOut: the connection to PostgreSQL drops and new
// ones are refused for a while in the middle of the stream; the sink retries
// with back-off, offsets wait, and once the database is back every event is
// written exactly once.
func TestDatabaseOutageIsWaitedOut(t *testing.T) {
	env := kafkatest.Start(t)
	dbURL := sinktest.Postgres(t)
	u, _ := url.Parse(dbURL)
	px := newProxy(t, u.Host)
	u.Host = px.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()

	evs := sinktest.Produce(t, env.Kafka, env.Topics, sinktest.NewGenerator(env.Topics, 21), 20000)
	reg := prometheus.NewRegistry()
	lm := sink.NewMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Open(ctx, Config{URL: u.String(), Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	delivered := 0
	done := make(chan error, 1)
	go func() {
		done <- sink.Run(ctx, sink.Config{Name: "postgres", Kafka: env.Kafka, MaxBatch: 200, RetryMin: 50 * time.Millisecond,
			RetryMax: 200 * time.Millisecond, Metrics: lm, Committed: func(b []sink.Event, _ time.Time) {
				mu.Lock()
				delivered += len(b)
				mu.Unlock()
			}}, s)
	}()
	testwait.Eventually(t, time.Minute, "a first delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return delivered > 0
	})
	px.cut()
	time.Sleep(1500 * time.Millisecond) // the outage lasts: batches in flight end, retries start
	mu.Lock()
	during := delivered
	mu.Unlock()
	time.Sleep(500 * time.Millisecond) // more outage: nothing may be delivered in it
	mu.Lock()
	if delivered != during {
		t.Fatalf("offsets moved while the database was away: %d then %d", during, delivered)
	}
	mu.Unlock()
	px.heal()
	for _, topic := range sink.EventTopics(env.Kafka.TopicPrefix) {
		kafkatest.WaitCaughtUp(t, env.Kafka, sink.GroupFor(env.Kafka.TopicPrefix, "postgres"), topic, 2*time.Minute)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the sink must wait out an outage, not stop: %v", err)
	}
	mfs, _ := reg.Gather()
	errorsSeen := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "usagestream_sink_write_errors_total" {
			errorsSeen = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if errorsSeen == 0 {
		t.Fatal("no failed write during the outage: the test did not cut anything")
	}
	c := connect(t, dbURL)
	var n int
	if err := c.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM eligibility_history)+(SELECT count(*) FROM corrections)+
		(SELECT count(*) FROM account_events)+(SELECT count(*) FROM anomalies)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(evs) {
		t.Fatalf("%d rows after the outage, want %d", n, len(evs))
	}
	t.Logf("%v failed writes during the outage; %d events written once each", errorsSeen, n)
}
