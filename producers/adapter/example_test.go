package adapter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/producers/adapter"
)

// fakes starts an in-memory Kafka cluster with the two topics a Client
// writes and an in-memory schema registry: what `usagestream run` serves,
// for an example that needs nothing running. stop ends both.
func fakes() (brokers []string, reg *sr.Client, stop func()) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "intervals.v1", "rejected.v1"))
	if err != nil {
		log.Fatal(err)
	}
	registry := srfake.New()
	reg, err = sr.NewClient(sr.URLs(registry.URL()))
	if err != nil {
		log.Fatal(err)
	}
	return cluster.ListenAddrs(), reg, func() { registry.Close(); cluster.Close() }
}

// An adapter sends reads one by one and closes the client, which flushes.
// The read's time is its UTC end instant; its local date and time (what
// billing days count in) come from the utility's zone.
func Example() {
	brokers, reg, stop := fakes()
	defer stop()
	ctx := context.Background()

	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		log.Fatal(err)
	}
	c, err := adapter.New(ctx, reg, adapter.Config{Utility: "gec", Name: "mdms-east", Location: ny},
		kgo.SeedBrokers(brokers...))
	if err != nil {
		log.Fatal(err)
	}
	end := time.Date(2024, 6, 1, 4, 15, 0, 0, time.UTC) // 00:15 in New York
	for i := 0; i < 4; i++ {
		err := c.Send(ctx, adapter.Read{ServicePointID: "SP1", End: end.Add(time.Duration(i) * 15 * time.Minute),
			Minutes: 15, Value: 0.25, Units: "KWH", Estimate: "A"})
		if err != nil {
			log.Fatal(err) // a *adapter.ReadError: this read is wrong
		}
	}
	if err := c.Close(ctx); err != nil {
		log.Fatal(err) // names every read not delivered: send those again
	}
	fmt.Println("4 reads sent")
	// Output: 4 reads sent
}

// A refused read comes back as a *ReadError whose reasons name the field
// and a stable code; it is also kept on rejected.v1 with the adapter's
// name, as a rejected file row is.
func ExampleReadError() {
	brokers, reg, stop := fakes()
	defer stop()
	ctx := context.Background()
	c, err := adapter.New(ctx, reg, adapter.Config{Utility: "gec", Name: "mdms-east"}, kgo.SeedBrokers(brokers...))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	err = c.Send(ctx, adapter.Read{ServicePointID: "SP1", End: time.Date(2024, 6, 1, 4, 10, 0, 0, time.UTC),
		Minutes: 15, Value: 0.25, Units: "BTU", Line: 12})
	var re *adapter.ReadError
	if errors.As(err, &re) {
		for _, r := range re.Reasons {
			fmt.Println(re.Line, r.Field, r.Code)
		}
	}
	// Output:
	// 12 time OFF_GRID
	// 12 units BAD_UNITS
}

// SendBatch waits until every read is on Kafka or refused: errs[i] is nil
// exactly when reads[i] was delivered.
func ExampleClient_SendBatch() {
	brokers, reg, stop := fakes()
	defer stop()
	ctx := context.Background()
	c, err := adapter.New(ctx, reg, adapter.Config{Utility: "gec", Name: "mdms-east"}, kgo.SeedBrokers(brokers...))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	// The meter's local clock, with its offset: LocalEnd instead of End.
	edt := time.FixedZone("EDT", -4*3600)
	reads := []adapter.Read{
		{ServicePointID: "SP1", LocalEnd: time.Date(2024, 6, 1, 1, 0, 0, 0, edt), Minutes: 60, Value: 1.5, Units: "KWH"},
		{ServicePointID: "SP1\n", LocalEnd: time.Date(2024, 6, 1, 2, 0, 0, 0, edt), Minutes: 60, Value: 1.5, Units: "KWH"},
	}
	for i, err := range c.SendBatch(ctx, reads) {
		fmt.Println(i, err == nil)
	}
	// Output:
	// 0 true
	// 1 false
}

// What an adapter cannot even turn into a Read (a line of its export that
// does not parse) is kept on rejected.v1 beside the refused reads.
func ExampleClient_Reject() {
	brokers, reg, stop := fakes()
	defer stop()
	ctx := context.Background()
	c, err := adapter.New(ctx, reg, adapter.Config{Utility: "gec", Name: "mdms-east"}, kgo.SeedBrokers(brokers...))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	err = c.Reject(ctx, adapter.Rejection{Line: 3, Raw: "SP1;2024-06-01 00:15;abc", Reasons: []adapter.Reason{
		{Field: "value", Code: "BAD_NUMBER", Rule: "DC-3", Message: `value "abc" is not a number`}}})
	fmt.Println(err, c.Origin())
	// Output: <nil> adapter:mdms-east
}
