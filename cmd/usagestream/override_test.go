package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/producers/override"
)

func parseCLI(t *testing.T, args ...string) (*cli, error) {
	t.Helper()
	var c cli
	var out bytes.Buffer
	k, err := kong.New(&c, append(kongOptions(), kong.Writers(&out, &out), kong.Exit(func(int) {}))...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Parse(args)
	return &c, err
}

// TestOverrideClearAndList: `override clear` writes an audited action to
// the operator-actions topic and `override list` shows it with its
// position; a clear without a ticket, or of a condition no operator can
// clear, is refused before anything is written.
func TestOverrideClearAndList(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()

	for _, bad := range [][]string{
		{"override", "clear", "--service-point", "SP1", "--anomaly", "ACTIVE_DATE_CHANGED", "--actor", "ops", "--reason", "r"},
		{"override", "clear", "--service-point", "SP1", "--anomaly", "USAGE_GAP", "--actor", "ops", "--reason", "r", "--ticket", "T"},
	} {
		if _, err := parseCLI(t, bad...); err == nil {
			t.Errorf("%v parsed; want an error", bad)
		}
	}

	c, err := parseCLI(t, "override", "clear", "--utility", "tst", "--service-point", "SP1", "--anomaly", "ACTIVE_DATE_CHANGED", "--account", "A1",
		"--actor", "ops", "--reason", "new date confirmed\nby billing", "--ticket", "OPS-9", "--id", "act-cli-1")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.Override.Clear.run(ctx, env.Kafka, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "act-cli-1") || !strings.Contains(out.String(), env.Topics.OperatorActions) {
		t.Errorf("clear printed %q; want the action id and its topic", out.String())
	}

	out.Reset()
	if err := (&overrideListCmd{JSON: true}).run(ctx, env.Kafka, &out); err != nil {
		t.Fatal(err)
	}
	var e override.Entry
	if err := json.Unmarshal(out.Bytes(), &e); err != nil {
		t.Fatalf("list --json printed %q: %v", out.String(), err)
	}
	a := e.Action
	if a.ActionID != "act-cli-1" || a.ServicePointID != "SP1" || a.AccountID != "A1" || a.Actor != "ops" || a.Ticket != "OPS-9" ||
		a.Reason != "new date confirmed\nby billing" || a.RequestedAt.IsZero() || e.Topic != env.Topics.OperatorActions {
		t.Errorf("listed %+v", e)
	}

	// A hold, then its release: both listed; in force, the clear alone.
	for _, args := range [][]string{
		{"override", "hold", "--utility", "tst", "--customer", "C1", "--premise", "P1", "--program", "web_access", "--ineligible",
			"--actor", "ops", "--reason", "complaint", "--ticket", "OPS-10", "--id", "act-cli-2"},
		{"override", "release", "--utility", "tst", "--customer", "C1", "--premise", "P1", "--program", "web_access",
			"--actor", "ops", "--reason", "resolved", "--ticket", "OPS-10", "--id", "act-cli-3"},
	} {
		c, err := parseCLI(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		run := c.Override.Hold.run
		if args[1] == "release" {
			run = c.Override.Release.run
		}
		out.Reset()
		if err := run(ctx, env.Kafka, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), env.Topics.OperatorHolds) {
			t.Errorf("%s printed %q; want the holds topic", args[1], out.String())
		}
	}
	for _, bad := range [][]string{
		{"override", "hold", "--utility", "tst", "--customer", "C1", "--premise", "P1", "--program", "web_access", "--eligible", "--ineligible",
			"--actor", "ops", "--reason", "r", "--ticket", "T"},
		{"override", "hold", "--utility", "tst", "--customer", "C1", "--premise", "P1", "--program", "newsletter", "--eligible",
			"--actor", "ops", "--reason", "r", "--ticket", "T"},
	} {
		if _, err := parseCLI(t, bad...); err == nil {
			t.Errorf("%v parsed; want an error", bad)
		}
	}
	out.Reset()
	if err := (&overrideListCmd{JSON: true, InForce: true}).run(ctx, env.Kafka, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 || !strings.Contains(out.String(), "act-cli-1") {
		t.Errorf("list --in-force printed %q; want the clear alone", out.String())
	}

	out.Reset()
	if err := (&overrideListCmd{}).run(ctx, env.Kafka, &out); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 4 || !strings.Contains(lines[1], "new date confirmed by billing") {
		t.Errorf("list printed %q; want a header and three lines, the reason on one line", out.String())
	}
}

// TestOverrideHoldUntil: `override hold --until` writes a hold with its
// last day, which `override list` shows; a day already past, or no date,
// is refused before anything is written.
func TestOverrideHoldUntil(t *testing.T) {
	env := kafkatest.Start(t)
	ctx := context.Background()
	args := func(until string) []string {
		return []string{"override", "hold", "--utility", "tst", "--customer", "C1", "--premise", "P1", "--program", "web_access", "--ineligible",
			"--actor", "ops", "--reason", "complaint", "--ticket", "OPS-12", "--until", until}
	}
	var out bytes.Buffer
	for _, bad := range []string{"2020-01-01", "next week"} {
		c, err := parseCLI(t, args(bad)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Override.Hold.run(ctx, env.Kafka, &out); err == nil || !strings.Contains(err.Error(), "until") {
			t.Errorf("--until %s: %v; want an error about until", bad, err)
		}
	}
	c, err := parseCLI(t, args("2099-12-31")...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Override.Hold.run(ctx, env.Kafka, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := (&overrideListCmd{}).run(ctx, env.Kafka, &out); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "until 2099-12-31") {
		t.Errorf("list printed %q; want the one hold, until 2099-12-31", out.String())
	}
}
