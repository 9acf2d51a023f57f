package query

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
)

// EndpointsTopic is the compacted topic where each instance advertises its
// query API address, keyed by its static group instance id.
func EndpointsTopic(prefix string) string { return prefix + "query-endpoints.v1" }

// directory knows what the cluster says about where keys live: partition
// counts, the group's assignment, and the advertised addresses.
type directory struct {
	kc kafkaconf.Config

	mu        sync.Mutex
	cl        *kgo.Client
	parts     map[string]int
	urls      map[string]string
	urlsTaken time.Time
}

func newDirectory(kc kafkaconf.Config) *directory {
	return &directory{kc: kc, parts: map[string]int{}}
}

// client is one shared admin client, made on first use so that a process
// whose API is never asked does not hold a connection for it.
func (d *directory) client(ctx context.Context) (*kadm.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cl == nil {
		cl, err := d.kc.NewClient(ctx)
		if err != nil {
			return nil, err
		}
		d.cl = cl
	}
	return kadm.NewClient(d.cl), nil
}

// Close releases the admin client.
func (d *directory) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cl != nil {
		d.cl.Close()
		d.cl = nil
	}
}

// partitions is the partition count of topic; it is cached, as a topic's
// partitions cannot change without breaking the processors' co-partitioning.
func (d *directory) partitions(ctx context.Context, topic string) (int, error) {
	d.mu.Lock()
	n, ok := d.parts[topic]
	d.mu.Unlock()
	if ok {
		return n, nil
	}
	adm, err := d.client(ctx)
	if err != nil {
		return 0, err
	}
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describing topic %s: %w", topic, err)
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return 0, fmt.Errorf("topic %s is missing: 'usagestream run' creates it", topic)
	}
	d.mu.Lock()
	d.parts[topic] = len(td.Partitions)
	d.mu.Unlock()
	return len(td.Partitions), nil
}

// owner finds the member of group that owns partition p of topic, and the
// address it advertised.
func (d *directory) owner(ctx context.Context, group, topic string, p int32) (Owner, error) {
	adm, err := d.client(ctx)
	if err != nil {
		return Owner{}, err
	}
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return Owner{}, fmt.Errorf("describing group %s: %w", group, err)
	}
	g, ok := gs[group]
	if !ok || g.Err != nil {
		return Owner{}, fmt.Errorf("describing group %s: %v", group, g.Err)
	}
	for _, m := range g.Members {
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range c.Topics {
			if t.Topic != topic || !slices.Contains(t.Partitions, p) {
				continue
			}
			member := m.MemberID
			if m.InstanceID != nil {
				member = *m.InstanceID
			}
			url, err := d.url(ctx, member)
			if err != nil {
				// The owner is known, its address is not: 421 names it.
				return Owner{Member: member, Partition: p}, nil
			}
			return Owner{Member: member, URL: url, Partition: p}, nil
		}
	}
	return Owner{}, errors.New("the group is rebalancing or no instance runs")
}

// url is the advertised address of member; the table is read again when the
// member is missing from it and it is older than a few seconds.
func (d *directory) url(ctx context.Context, member string) (string, error) {
	d.mu.Lock()
	u, ok := d.urls[member]
	fresh := time.Since(d.urlsTaken) < 5*time.Second
	d.mu.Unlock()
	if ok || fresh {
		return u, nil
	}
	urls := map[string]string{}
	err := consume.Each(ctx, d.kc, EndpointsTopic(d.kc.TopicPrefix), func(r *kgo.Record) {
		if r.Value == nil {
			delete(urls, string(r.Key))
		} else {
			urls[string(r.Key)] = string(r.Value)
		}
	})
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.urls, d.urlsTaken = urls, time.Now()
	d.mu.Unlock()
	return urls[member], nil
}

// advertise records url as member's address, creating the topic on first
// use (compacted: only each member's latest address matters).
func (d *directory) advertise(ctx context.Context, member, url string) error {
	adm, err := d.client(ctx)
	if err != nil {
		return err
	}
	topic := EndpointsTopic(d.kc.TopicPrefix)
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	d.mu.Lock()
	cl := d.cl
	d.mu.Unlock()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(member), Value: []byte(url)}).FirstErr()
}

// advertiseURL turns a listening address into a URL another host can use:
// a wildcard address becomes this host's name.
func advertiseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}
