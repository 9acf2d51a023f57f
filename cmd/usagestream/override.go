package main

// usagestream override: operator actions (docs/rules.md#OV1), written to the
// operator-actions topic that the stages read beside billing rows, and
// listed from it.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/producers/override"
	"github.com/usagestream/usagestream/records"
)

type overrideCmd struct {
	connFlags
	Clear   overrideClearCmd   `cmd:"" help:"Clear an open condition on a service point (ACTIVE_DATE_CHANGED, REACTIVATION_REFUSED): the service point stage applies it, and the events it causes cite it (rule OV1)."`
	Hold    overrideHoldCmd    `cmd:"" help:"Hold a program eligible or ineligible for a customer at a premise, whatever the rules find, until released or through --until (rule OV2)."`
	Release overrideReleaseCmd `cmd:"" help:"Release the hold of a program for a customer at a premise: the rules' own answer again (rule OV2)."`
	List    overrideListCmd    `cmd:"" help:"List the operator actions written so far, oldest request first (the audit trail); --in-force: the clears and the holds not released."`
}

// auditFlags are what every action records about itself.
type auditFlags struct {
	Actor  string `name:"actor" env:"USAGESTREAM_ACTOR" required:"" help:"Who asks (an operator login)."`
	Reason string `name:"reason" required:"" help:"Why, in words: it is kept with the action forever."`
	Ticket string `name:"ticket" required:"" help:"The ticket or change reference that authorises the action."`
	ID     string `name:"id" help:"Action id; default: a new UUID."`
}

type overrideClearCmd struct {
	ServicePoint string `name:"service-point" required:"" help:"The service point the condition is open on."`
	Anomaly      string `name:"anomaly" required:"" enum:"ACTIVE_DATE_CHANGED,REACTIVATION_REFUSED" help:"The condition: ${enum}."`
	Account      string `name:"account" help:"The account the condition concerns; needed only when two accounts have it open."`
	Utility      string `name:"utility" env:"USAGESTREAM_UTILITY" required:"" help:"Utility code the events carry."`
	auditFlags
}

// subjectFlags name the subject of eligibility a hold is for.
type subjectFlags struct {
	Customer string `name:"customer" required:"" help:"customer_id."`
	Premise  string `name:"premise" required:"" help:"premise_id."`
	Program  string `name:"program" required:"" enum:"${programs}" help:"The program: ${enum}."`
	Utility  string `name:"utility" env:"USAGESTREAM_UTILITY" required:"" help:"Utility code the events carry."`
}

type overrideHoldCmd struct {
	subjectFlags
	Eligible   bool   `name:"eligible" xor:"held" required:"" help:"Hold the program eligible."`
	Ineligible bool   `name:"ineligible" xor:"held" required:"" help:"Hold the program ineligible (reason OPERATOR_HOLD)."`
	Until      string `name:"until" placeholder:"YYYY-MM-DD" help:"The hold's last day; it ends when the next day begins (UTC). Default: until released."`
	auditFlags
}

type overrideReleaseCmd struct {
	subjectFlags
	auditFlags
}

type overrideListCmd struct {
	JSON    bool `name:"json" help:"One JSON object a line instead of a table."`
	InForce bool `name:"in-force" help:"Only the overrides in force: every clear, and each program's last hold unless released."`
}

func (c *overrideClearCmd) Run(ctx context.Context, g *Globals) error {
	return c.run(ctx, g.Kafka, os.Stdout)
}

func (c *overrideClearCmd) run(ctx context.Context, kc kafkaconf.Config, out io.Writer) error {
	a := &records.OperatorAction{ActionID: c.ID, Kind: records.ActionClearAnomaly, Utility: c.Utility,
		ServicePointID: c.ServicePoint, AnomalyCode: c.Anomaly, AccountID: c.Account,
		Actor: c.Actor, Reason: c.Reason, Ticket: c.Ticket}
	return writeAction(ctx, kc, a, out)
}

func (c *overrideHoldCmd) Run(ctx context.Context, g *Globals) error {
	return c.run(ctx, g.Kafka, os.Stdout)
}

func (c *overrideHoldCmd) run(ctx context.Context, kc kafkaconf.Config, out io.Writer) error {
	kind := records.ActionHoldIneligible
	if c.Eligible {
		kind = records.ActionHoldEligible
	}
	a := c.action(kind, c.auditFlags)
	if c.Until != "" {
		d, err := time.Parse(time.DateOnly, c.Until)
		if err != nil {
			return fmt.Errorf("--until %q is no date: give the hold's last day as YYYY-MM-DD", c.Until)
		}
		u := dates.FromTime(d)
		a.Until = &u
	}
	return writeAction(ctx, kc, a, out)
}

func (c *overrideReleaseCmd) Run(ctx context.Context, g *Globals) error {
	return c.run(ctx, g.Kafka, os.Stdout)
}

func (c *overrideReleaseCmd) run(ctx context.Context, kc kafkaconf.Config, out io.Writer) error {
	return writeAction(ctx, kc, c.action(records.ActionReleaseHold, c.auditFlags), out)
}

func (f *subjectFlags) action(kind string, a auditFlags) *records.OperatorAction {
	return &records.OperatorAction{ActionID: a.ID, Kind: kind, Utility: f.Utility, CustomerID: f.Customer, PremiseID: f.Premise,
		Program: f.Program, Actor: a.Actor, Reason: a.Reason, Ticket: a.Ticket}
}

func writeAction(ctx context.Context, kc kafkaconf.Config, a *records.OperatorAction, out io.Writer) error {
	w, err := override.NewWriter(ctx, kc)
	if err != nil {
		return err
	}
	defer w.Close()
	pos, err := w.Write(ctx, a)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "operator action %s (%s) written to %s partition %d offset %d: the events it causes cite that position\n",
		a.ActionID, a.Kind, pos.Topic, pos.Partition, pos.Offset)
	return nil
}

func (c *overrideListCmd) Run(ctx context.Context, g *Globals) error {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	return c.run(ctx, g.Kafka, w)
}

func (c *overrideListCmd) run(ctx context.Context, kc kafkaconf.Config, out io.Writer) error {
	entries, err := override.List(ctx, kc)
	if err != nil {
		return err
	}
	if c.InForce {
		entries = override.InForce(entries, time.Now())
	}
	if c.JSON {
		enc := json.NewEncoder(out)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUESTED\tACTION\tKIND\tSUBJECT\tACTOR\tTICKET\tPOSITION\tREASON")
	for _, e := range entries {
		a := e.Action
		until := ""
		if a.Until != nil {
			until = "until " + a.Until.Time().Format(time.DateOnly)
		}
		subject := strings.Join(nonEmpty(a.ServicePointID, a.AnomalyCode, a.AccountID, a.CustomerID, a.PremiseID, a.Program, until), " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d@%d\t%s\n", a.RequestedAt.UTC().Format(time.RFC3339), a.ActionID, a.Kind,
			subject, a.Actor, a.Ticket, e.Partition, e.Offset, oneLine(a.Reason))
	}
	return tw.Flush()
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// oneLine keeps a free-text field from breaking the table.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
