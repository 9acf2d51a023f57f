#!/usr/bin/env python3
"""An external consumer of usagestream's topics, written with clients nobody
on the project wrote: confluent-kafka (librdkafka) for Kafka and its
schema-registry client plus fastavro for Confluent-framed Avro.

  check_events.py compare --expected FILE.json
      Reads every topic named in FILE.json (written by the Go test
      processors/pipeline/external_client_test.go) to its end, read_committed,
      decodes each value through the registry, and checks that the events are
      the expected ones field by field, at the same partition and offset, with
      the same key and count. Exit 0 when identical, 1 with every difference.

  check_events.py count --topic T [--expect N]
      Reads topic T to its end and decodes every value; prints the count.
      With --expect, exit 1 unless exactly N records were read.

Connection: --brokers, --registry, and for a secure listener --ca (PEM),
--sasl-mechanism, --sasl-user, and the password in the environment variable
USAGESTREAM_SASL_PASSWORD (never on the command line).
"""

import argparse
import datetime
import json
import os
import sys
import time
import uuid

import confluent_kafka
import fastavro
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


class Failure(Exception):
    """A difference or an error worth reporting without a traceback."""


def consumer_config(args):
    conf = {
        "bootstrap.servers": args.brokers,
        "group.id": "usagestream-pyclient-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # Only what committed transactions wrote, as usagestream's own readers.
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    }
    if args.sasl_mechanism:
        password = os.environ.get("USAGESTREAM_SASL_PASSWORD")
        if password is None:
            raise Failure("--sasl-mechanism is set: put the password in USAGESTREAM_SASL_PASSWORD")
        conf.update({
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": args.sasl_mechanism,
            "sasl.username": args.sasl_user,
            "sasl.password": password,
        })
        if args.ca:
            conf["ssl.ca.location"] = args.ca
    return conf


def read_topic(args, topic, timeout):
    """Returns [(partition, offset, key, value bytes)] of every committed record."""
    errors = []
    conf = consumer_config(args)
    conf["error_cb"] = lambda err: errors.append(err)
    consumer = Consumer(conf)
    try:
        md = consumer.list_topics(topic, timeout=timeout)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None:
            raise Failure(f"topic {topic}: not found on {args.brokers}: {tmd.error if tmd else 'no metadata'}")
        parts = sorted(tmd.partitions)
        consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in parts])
        pending = set(parts)
        out = []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise Failure(f"topic {topic}: partitions {sorted(pending)} not read to their end within {timeout} s")
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                raise Failure(f"topic {topic}: {msg.error()}")
            out.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
        return out
    except Exception as e:
        if errors:
            raise Failure(f"{e} (client errors: {'; '.join(str(x) for x in errors)})") from e
        raise
    finally:
        consumer.close()


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def normalize(v):
    """Decoded Avro in plain JSON terms, as the Go side writes them: dates as
    YYYY-MM-DD, timestamps as epoch milliseconds, unions unwrapped."""
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normalize(x) for x in v]
    if isinstance(v, datetime.datetime):
        return (v - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def js(v):
    return json.dumps(v, sort_keys=True, default=str)


def diff(path, want, got, out):
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            if k not in got:
                out.append(f"{path}.{k}: missing (want {js(want[k])})")
            elif k not in want:
                out.append(f"{path}.{k}: unexpected field {js(got[k])}")
            else:
                diff(f"{path}.{k}", want[k], got[k], out)
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            out.append(f"{path}: {len(got)} items, want {len(want)}")
        for i, (w, g) in enumerate(zip(want, got)):
            diff(f"{path}[{i}]", w, g, out)
    elif isinstance(got, float) and type(want) is int:
        # JSON has one number type: Go writes a double of 5.0 as 5.
        if float(want) != got:
            out.append(f"{path}: got {js(got)}, want {js(want)}")
    elif type(want) is not type(got) or want != got:
        out.append(f"{path}: got {js(got)}, want {js(want)}")


class Decoder:
    def __init__(self, registry):
        self.client = SchemaRegistryClient({"url": registry})
        self.avro = AvroDeserializer(self.client)
        self.registry = registry

    def decode(self, topic, value):
        if value is None or len(value) < 5 or value[0] != 0:
            raise Failure(f"topic {topic}: value is not Confluent-framed (magic byte 0, schema id)")
        return self.avro(value, SerializationContext(topic, MessageField.VALUE))

    def check_subject(self, topic, values):
        """The schema ids in the frames are the subject's latest version in the
        registry, which must also parse with fastavro on its own."""
        subject = topic + "-value"
        latest = self.client.get_latest_version(subject)
        fastavro.parse_schema(json.loads(latest.schema.schema_str))
        ids = {int.from_bytes(v[1:5], "big") for v in values}
        if ids != {latest.schema_id}:
            raise Failure(f"topic {topic}: frames carry schema ids {sorted(ids)}, but {subject} is id {latest.schema_id} at {self.registry}")


def compare(args):
    with open(args.expected, encoding="utf-8") as f:
        expected = json.load(f)
    dec = Decoder(args.registry)
    problems, total = [], 0
    for topic, want_events in sorted(expected["topics"].items()):
        want_events = want_events or []
        recs = read_topic(args, topic, args.timeout)
        if len(recs) != len(want_events):
            problems.append(f"{topic}: {len(recs)} records read, the Go test expects {len(want_events)}")
        want_at = {(e["partition"], e["offset"]): e for e in want_events}
        got_at = set()
        for part, off, key, value in recs:
            got_at.add((part, off))
            where = f"{topic}/{part}@{off}"
            want = want_at.get((part, off))
            if want is None:
                problems.append(f"{where}: not expected by the Go test")
                continue
            if (key or b"").decode("utf-8") != want["key"]:
                problems.append(f"{where}: key {key!r}, want {want['key']!r}")
            diff(where, want["value"], normalize(dec.decode(topic, value)), problems)
        for part, off in sorted(set(want_at) - got_at):
            problems.append(f"{topic}/{part}@{off}: expected by the Go test, not read")
        if recs:
            dec.check_subject(topic, [v for _, _, _, v in recs])
        total += len(recs)
        print(f"{topic}: {len(recs)} events read and decoded", file=sys.stderr)
    if problems:
        raise Failure(f"{len(problems)} differences between the Python client and the Go test:\n  " + "\n  ".join(problems))
    print(f"pyclient: {total} events in {len(expected['topics'])} topics identical field by field "
          f"(confluent-kafka {confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}, fastavro {fastavro.__version__})")


def count(args):
    dec = Decoder(args.registry)
    recs = read_topic(args, args.topic, args.timeout)
    for _, _, _, value in recs:
        dec.decode(args.topic, value)
    if recs:
        dec.check_subject(args.topic, [v for _, _, _, v in recs])
    print(f"pyclient: {len(recs)} records read from {args.topic} and decoded")
    if args.expect is not None and len(recs) != args.expect:
        raise Failure(f"{args.topic}: {len(recs)} records, want {args.expect}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", required=True)
    p.add_argument("--registry", required=True, help="Confluent-compatible registry URL (Apicurio: .../apis/ccompat/v7)")
    p.add_argument("--ca", help="PEM file of the CA that signed the broker certificate")
    p.add_argument("--sasl-mechanism", choices=["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
    p.add_argument("--sasl-user")
    p.add_argument("--timeout", type=float, default=60, help="seconds to read one topic to its end")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--expected", required=True)
    n = sub.add_parser("count")
    n.add_argument("--topic", required=True)
    n.add_argument("--expect", type=int)
    args = p.parse_args()
    try:
        compare(args) if args.cmd == "compare" else count(args)
    except Failure as e:
        print(f"pyclient: {e}", file=sys.stderr)
        return 1
    except (confluent_kafka.KafkaException, OSError) as e:
        print(f"pyclient: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
