#!/usr/bin/env python3
"""An example service consuming usagestream's eligibility events
(docs/consumers.md), the Python twin of examples/consumer-go:

- reads eligibility.v1 in a consumer group, read_committed, committing its
  offsets only after the events are applied;
- decodes each Confluent-framed Avro value with the writer's schema (fetched
  from the registry by the id in the frame, once) resolved against its own
  reader schema, eligibility.avsc: fields added to usagestream's schema later
  are skipped, and a field the reader adds takes its default;
- drops an event whose event_id it has applied (a redelivery after a crash,
  or a replay into the live topics, sends the same event again);
- folds the events into the current eligibility of each (customer, premise,
  program): the newest event of a subject is its state (a customer's events
  are in one partition, in order).

  pip install -r requirements.txt
  python consumer.py --brokers 127.0.0.1:9092 --registry http://127.0.0.1:8081 --until-idle 5

With --until-idle it stops once nothing arrived for that many seconds and
prints the fold as JSON; without it, it runs until interrupted.
"""

import argparse
import io
import json
import os
import struct
import sys
import time
import urllib.request

import fastavro
from confluent_kafka import Consumer, KafkaException

HERE = os.path.dirname(os.path.abspath(__file__))


class Decoder:
    """Confluent framing: magic byte 0, schema id (4 bytes, big-endian), Avro body."""

    def __init__(self, registry):
        self.registry = registry.rstrip("/")
        with open(os.path.join(HERE, "eligibility.avsc"), encoding="utf-8") as f:
            self.reader = fastavro.parse_schema(json.load(f))
        self.writers = {}

    def writer(self, schema_id):
        if schema_id not in self.writers:
            with urllib.request.urlopen(f"{self.registry}/schemas/ids/{schema_id}", timeout=30) as resp:
                text = json.load(resp)["schema"]
            self.writers[schema_id] = fastavro.parse_schema(json.loads(text))
        return self.writers[schema_id]

    def decode(self, value):
        if value is None or len(value) < 5 or value[0] != 0:
            raise ValueError("not a Confluent-framed Avro value")
        (schema_id,) = struct.unpack(">I", value[1:5])
        # fastavro resolves the writer's schema against the reader's.
        return fastavro.schemaless_reader(io.BytesIO(value[5:]), self.writer(schema_id), self.reader)


class Fold:
    """The consumer's state. A real service keeps it, with the event ids it
    applied (a unique key), in its database, in the transaction that applies
    an event."""

    def __init__(self):
        self.events = 0
        self.duplicates = 0
        self.seen = set()
        self.current = {}
        self.channels = {}

    def apply(self, e):
        self.events += 1
        if e["event_id"] in self.seen:
            self.duplicates += 1
            return
        self.seen.add(e["event_id"])
        self.channels[e["channel"]] = self.channels.get(e["channel"], 0) + 1
        cause = e["cause"]
        self.current[(e["customer_id"], e["premise_id"], e["program"])] = {
            "customer_id": e["customer_id"],
            "premise_id": e["premise_id"],
            "program": e["program"],
            "eligible": e["eligible"],
            "event_id": e["event_id"],
            "reasons": [{"code": r["code"], "rule": r["rule"], "service_point_id": r["service_point_id"],
                         "effective_date": r["effective_date"].isoformat()} for r in e["reasons"]],
            "source": f"{cause['file']}:{cause['line']}" if cause["file"] is not None else "",
        }

    def report(self):
        return {
            "events": self.events,
            "duplicates": self.duplicates,
            "channels": self.channels,
            "subjects": [self.current[k] for k in sorted(self.current)],
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--registry", default="http://127.0.0.1:8081")
    ap.add_argument("--topic-prefix", default="", help="usagestream's topic prefix (USAGESTREAM_TOPIC_PREFIX)")
    ap.add_argument("--group", default="eligibility-example-python")
    ap.add_argument("--until-idle", type=float, default=0, help="stop after this many seconds without a record")
    args = ap.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    # Idle time counts from the assignment: joining the group can take
    # seconds on a real cluster, and nothing arrives before it.
    assigned = []

    def on_assign(_consumer, _partitions):
        assigned.append(time.monotonic())

    consumer.subscribe([args.topic_prefix + "eligibility.v1"], on_assign=on_assign)
    decoder, fold = Decoder(args.registry), Fold()
    last = 0.0
    try:
        while True:
            msgs = consumer.consume(num_messages=500, timeout=1.0)
            for m in msgs:
                if m.error():
                    raise KafkaException(m.error())
                try:
                    fold.apply(decoder.decode(m.value()))
                except Exception as exc:
                    # Stop rather than skip: a skipped event leaves its subject
                    # wrong for good. Fix the cause and start again from the
                    # committed offset.
                    raise SystemExit(f"{m.topic()} partition {m.partition()} offset {m.offset()}: {exc}")
            if msgs:
                last = time.monotonic()
                consumer.commit(asynchronous=False)
            elif args.until_idle and assigned and time.monotonic() - max(last, assigned[-1]) >= args.until_idle:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    json.dump(fold.report(), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
