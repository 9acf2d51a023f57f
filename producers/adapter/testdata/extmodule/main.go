// Command mdmsadapter is what an MDMS team writes with the usagestream Go
// SDK: it streams a day of 15-minute reads of one service point, given by
// their UTC end instants, and one read that breaks the contract. Against
// an in-memory Kafka and registry (kfake, srfake), it then reads the
// topics back and prints what landed.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/producers/adapter"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mdmsadapter:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "intervals.v1", "rejected.v1"))
	if err != nil {
		return err
	}
	defer cluster.Close()
	registry := srfake.New()
	defer registry.Close()
	reg, err := sr.NewClient(sr.URLs(registry.URL()))
	if err != nil {
		return err
	}

	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		return err
	}
	c, err := adapter.New(ctx, reg, adapter.Config{Utility: "gec", Name: "mdms-central", Location: chicago},
		kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		return err
	}
	start := time.Date(2024, 6, 1, 5, 0, 0, 0, time.UTC) // local midnight in Chicago
	var reads []adapter.Read
	for i := 1; i <= 96; i++ {
		reads = append(reads, adapter.Read{ServicePointID: "SP-42", End: start.Add(time.Duration(i) * 15 * time.Minute),
			Minutes: 15, Value: 0.125, Units: "kwh", Estimate: "A", Line: int64(i)})
	}
	reads = append(reads, adapter.Read{ServicePointID: "SP-42", Minutes: 15, Value: 1, Units: "KWH", Line: 97}) // no time
	refused := 0
	for i, err := range c.SendBatch(ctx, reads) {
		var re *adapter.ReadError
		switch {
		case err == nil:
		case errors.As(err, &re) && re.Err == nil:
			refused++
			fmt.Printf("refused line %d: %v\n", reads[i].Line, re.Codes())
		default:
			return err
		}
	}
	if err := c.Close(ctx); err != nil {
		return err
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("intervals.v1", "rejected.v1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	count := map[string]int{}
	for count["intervals.v1"]+count["rejected.v1"] < 97 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) { count[r.Topic]++ })
	}
	fmt.Printf("intervals.v1 %d, rejected.v1 %d, refused %d\n", count["intervals.v1"], count["rejected.v1"], refused)
	return nil
}
