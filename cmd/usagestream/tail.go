package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/processors/runtime"
	recavro "github.com/usagestream/usagestream/records/avro"
)

type tailCmd struct {
	connFlags
	Topic      string   `arg:"" help:"Topic: its full name, or its name without the topic prefix (eligibility.v1)."`
	From       string   `name:"from" placeholder:"WHERE" help:"Where to start in every partition: earliest, latest, an offset, or a time (RFC 3339, YYYY-MM-DD, or a duration back from now such as 2h). Default: --since if given, else earliest."`
	Key        []string `name:"key" help:"Only records with this key (repeatable); only the partitions of these keys are read."`
	Since      string   `name:"since" placeholder:"TIME" help:"Only records whose timestamp is at or after TIME (same forms as --from)."`
	Until      string   `name:"until" placeholder:"TIME" help:"Only records whose timestamp is before TIME."`
	Partitions []int32  `name:"partition" help:"Only these partitions (repeatable)."`
	Follow     bool     `name:"follow" short:"f" help:"Keep printing new records until interrupted; default: stop at the end the topic had at start."`
	Max        int      `name:"max" short:"n" help:"Stop after this many records (0: no limit)."`
	Format     string   `name:"format" enum:"json,pretty,template" default:"json" help:"json: a JSON line per record; pretty: indented JSON; template: --template applied to each record."`
	Template   string   `name:"template" placeholder:"TEXT" help:"With --format template: a Go text/template over the record's JSON fields, e.g. '{{.offset}} {{.key}} {{.value.program}} {{.value.eligible}}' (a newline is added)."`
}

// recordPrinter writes one record in the chosen --format.
type recordPrinter func(w io.Writer, l tailLine) error

func (c *tailCmd) printer() (recordPrinter, error) {
	switch c.Format {
	case "", "json":
		if c.Template != "" {
			return nil, errors.New("--template is used with --format template")
		}
		return func(w io.Writer, l tailLine) error { return json.NewEncoder(w).Encode(l) }, nil
	case "pretty":
		return func(w io.Writer, l tailLine) error {
			b, err := json.MarshalIndent(l, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%s\n", b)
			return err
		}, nil
	case "template":
		if c.Template == "" {
			return nil, errors.New("--format template needs --template TEXT, e.g. '{{.key}} {{.value}}'")
		}
		text := c.Template
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		tmpl, err := template.New("tail").Option("missingkey=zero").Parse(text)
		if err != nil {
			return nil, fmt.Errorf("--template: %w", err)
		}
		return func(w io.Writer, l tailLine) error {
			// The fields by their JSON names, values as the JSON renders them
			// (ISO dates, RFC 3339 timestamps, unions unwrapped).
			b, err := json.Marshal(l)
			if err != nil {
				return err
			}
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				return err
			}
			if err := tmpl.Execute(w, m); err != nil {
				return fmt.Errorf("--template on %s[%d]@%d: %w", l.Topic, l.Partition, l.Offset, err)
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("--format %q: use json, pretty or template", c.Format)
}

// tailLine is one record as a JSON line. Avro values are decoded through
// the registry and rendered as the JSON Lines sink renders them
// (recavro.JSONSchema: fields in schema order, ISO dates, RFC 3339
// timestamps, unions unwrapped); JSON values (the internal topics) are kept
// as they are; anything else is base64.
type tailLine struct {
	Topic       string          `json:"topic"`
	Partition   int32           `json:"partition"`
	Offset      int64           `json:"offset"`
	Timestamp   time.Time       `json:"timestamp"`
	Key         *string         `json:"key,omitempty"`
	KeyBase64   []byte          `json:"key_base64,omitempty"`
	SchemaID    int             `json:"schema_id,omitempty"`
	Value       json.RawMessage `json:"value"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
	// ValueError says why a framed value could not be decoded (a
	// quarantined record): the value is then printed as base64.
	ValueError string `json:"value_error,omitempty"`
	// Headers are the record's headers (a quarantined record's origin).
	Headers map[string]string `json:"headers,omitempty"`
}

func (c *tailCmd) Run(ctx context.Context, g *Globals) error {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	return c.run(ctx, g.Kafka, w, func() { _ = w.Flush() })
}

// parseWhen reads a time: RFC 3339, a date, or a duration back from now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2025-03-01T12:00:00Z), a date (2025-03-01) or a duration back from now (2h)", s)
}

// resolveTopic accepts a name with or without the topic prefix.
func resolveTopic(ctx context.Context, adm *kadm.Client, prefix, name string) (string, int, error) {
	cands := []string{name}
	if !strings.HasPrefix(name, prefix) {
		cands = append(cands, prefix+name)
	}
	tds, err := adm.ListTopics(ctx, cands...)
	if err != nil {
		return "", 0, fmt.Errorf("listing topics: %w", err)
	}
	for _, t := range cands {
		if td, ok := tds[t]; ok && td.Err == nil && len(td.Partitions) > 0 {
			return t, len(td.Partitions), nil
		}
	}
	return "", 0, fmt.Errorf("topic %s does not exist (tried %s): check --topic-prefix", name, strings.Join(cands, ", "))
}

func (c *tailCmd) run(ctx context.Context, kc kafkaconf.Config, w io.Writer, flush func()) error {
	printRec, err := c.printer()
	if err != nil {
		return err
	}
	now := time.Now()
	var since, until time.Time
	if c.Since != "" {
		if since, err = parseWhen(c.Since, now); err != nil {
			return fmt.Errorf("--since: %w", err)
		}
	}
	if c.Until != "" {
		if until, err = parseWhen(c.Until, now); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	from := c.From
	if from == "" {
		from = "earliest"
		if c.Since != "" {
			from = c.Since
		}
	}
	adm0, err := kc.NewClient(ctx)
	if err != nil {
		return err
	}
	defer adm0.Close()
	adm := kadm.NewClient(adm0)
	topic, n, err := resolveTopic(ctx, adm, kc.TopicPrefix, c.Topic)
	if err != nil {
		return err
	}

	parts := map[int32]bool{}
	for p := range int32(n) {
		parts[p] = len(c.Partitions) == 0 || slices.Contains(c.Partitions, p)
	}
	if len(c.Key) > 0 {
		keyParts := map[int32]bool{}
		for _, k := range c.Key {
			keyParts[runtime.KeyPartition([]byte(k), n)] = true
		}
		for p := range parts {
			parts[p] = parts[p] && keyParts[p]
		}
	}
	for _, p := range c.Partitions {
		if p < 0 || int(p) >= n {
			return fmt.Errorf("--partition %d: %s has partitions 0 to %d", p, topic, n-1)
		}
	}

	start, err := startOffsets(ctx, adm, topic, from, now)
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	consumeAt := map[int32]kgo.Offset{}
	end := map[int32]int64{}
	done := map[int32]bool{}
	for p, on := range parts {
		if !on {
			continue
		}
		consumeAt[p] = kgo.NewOffset().At(start[p])
		if o, ok := ends.Lookup(topic, p); ok {
			end[p] = o.Offset
		}
		if start[p] >= end[p] {
			done[p] = true
		}
	}
	if len(consumeAt) == 0 {
		return nil
	}

	rc, err := kc.NewRegistryClient()
	if err != nil {
		return err
	}
	dec := recavro.NewDecoder(serde.NewRegistry(rc))
	cl, err := kc.NewClient(ctx, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consumeAt}))
	if err != nil {
		return err
	}
	defer cl.Close()

	keys := map[string]bool{}
	for _, k := range c.Key {
		keys[k] = true
	}
	printed := 0
	for {
		if !c.Follow && len(done) == len(consumeAt) {
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil // interrupted: what was printed stands
		}
		if fs.Empty() {
			if !c.Follow {
				// Nothing arrives although the end is not reached: the rest
				// is an open or aborted transaction, invisible here.
				return nil
			}
			flush()
			continue
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var stop bool
		fs.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			past := r.Offset >= end[r.Partition]
			if r.Offset >= end[r.Partition]-1 {
				done[r.Partition] = true
			}
			if r.Attrs.IsControl() || (past && !c.Follow) {
				return
			}
			if len(keys) > 0 && !keys[string(r.Key)] {
				return
			}
			if (!since.IsZero() && r.Timestamp.Before(since)) || (!until.IsZero() && !r.Timestamp.Before(until)) {
				return
			}
			line, err := tailRecord(ctx, dec, r)
			if err != nil {
				ferr = err
				stop = true
				return
			}
			if err := printRec(w, line); err != nil {
				ferr = err
				stop = true
				return
			}
			printed++
			if c.Max > 0 && printed >= c.Max {
				stop = true
			}
		})
		if ferr != nil {
			return ferr
		}
		if stop {
			return nil
		}
		if c.Follow {
			flush()
		}
	}
}

// startOffsets resolves --from to an offset in every partition of topic.
func startOffsets(ctx context.Context, adm *kadm.Client, topic, from string, now time.Time) (map[int32]int64, error) {
	out := map[int32]int64{}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of %s: %w", topic, err)
	}
	switch {
	case from == "earliest" || from == "start":
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing the start offsets of %s: %w", topic, err)
		}
		starts.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	case from == "latest" || from == "end":
		ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	default:
		if off, err := strconv.ParseInt(from, 10, 64); err == nil && off >= 0 {
			ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = min(off, o.Offset) })
			return out, nil
		}
		t, err := parseWhen(from, now)
		if err != nil {
			return nil, fmt.Errorf("--from: %w (or earliest, latest, an offset)", err)
		}
		after, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
		if err == nil {
			err = after.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("finding the offsets of %s after %s: %w", topic, t.Format(time.RFC3339), err)
		}
		after.Each(func(o kadm.ListedOffset) {
			end, _ := ends.Lookup(topic, o.Partition)
			at := o.Offset
			if at < 0 || at > end.Offset { // nothing at or after t
				at = end.Offset
			}
			out[o.Partition] = at
		})
	}
	return out, nil
}

// tailRecord renders one record (see tailLine).
func tailRecord(ctx context.Context, dec *recavro.Decoder, r *kgo.Record) (tailLine, error) {
	l := tailLine{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC()}
	if r.Key != nil {
		if utf8.Valid(r.Key) {
			k := string(r.Key)
			l.Key = &k
		} else {
			l.KeyBase64 = r.Key
		}
	}
	for _, h := range r.Headers {
		if l.Headers == nil {
			l.Headers = map[string]string{}
		}
		l.Headers[h.Key] = strings.ToValidUTF8(string(h.Value), "\uFFFD")
	}
	switch {
	case r.Value == nil:
		l.Value = json.RawMessage("null")
	case len(r.Value) > 5 && r.Value[0] == 0:
		js, id, err := dec.AppendJSON(ctx, nil, r.Value)
		if quarantine.IsPoison(err) {
			// The record is bad, not the registry: show it as it is.
			l.Value, l.ValueBase64, l.ValueError = json.RawMessage("null"), r.Value, err.Error()
			return l, nil
		}
		if err != nil {
			return l, fmt.Errorf("%s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		l.SchemaID, l.Value = id, js
	case json.Valid(r.Value):
		l.Value = r.Value
	default:
		l.Value = json.RawMessage("null")
		l.ValueBase64 = r.Value
	}
	return l, nil
}
