package pipeline

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/topics"
)

func kadmClient(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("USAGESTREAM_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// waitStages waits until both stages caught up, failing at once with the
// error of a stage that stopped.
func waitStages(t *testing.T, kc kafkaconf.Config, names topics.Names, errs chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := consume.WaitCaughtUp(ctx, kc, kc.TopicPrefix+"processor-"+StageServicePoint, names.Billing)
		if err == nil {
			err = consume.WaitCaughtUp(ctx, kc, kc.TopicPrefix+"processor-"+StageCustomer, names.Memberships)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-errs:
		t.Fatalf("a processor stopped: %v", err)
	}
}
