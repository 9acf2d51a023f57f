#!/usr/bin/env python3
"""Compare the event topics of two `usagestream process` runs over the same
input file under two topic prefixes (scripts/bench-real.sh, COMPARE=1).

    bench-compare.py REF_DIR RUN_DIR     # each: <topic>.jsonl from `usagestream tail`
    bench-compare.py --self-test

The two runs read the same file, ingested twice, so what may differ is only
what depends on Kafka positions and on how the work was cut into
transactions; everything else must be equal:

- Event ids and the Kafka positions in `cause` and `reasons[].source` name
  the prefix and offsets of each run's own topics (ingest's transaction
  markers and the repartition topics' interleaving move offsets), so they
  are dropped before comparing; the file and line the event cites stay.
- Within a run, no event id may appear twice on a topic (exactly once).
- Events whose id derives from an input topic (billing.v1, intervals.v1:
  one partition's records in file order in both runs) must be equal as a
  multiset: same count, same content.
- Events made from a repartition topic (premise and customer stages) see
  their inputs interleaved as the upstream transactions landed, and a
  transaction's outputs are coalesced per subject to their net change
  (processors/runtime), so their number may differ with the transaction
  boundaries, and so may the input the last change cites. What must be
  equal is the last state of every subject (the last event without its
  cause): eligibility per (customer, premise, program), the others per key
  and content kind.

Prints one line per topic and exits 1 on any mismatch.
"""
import json
import os
import sys
from collections import Counter

INPUT_SUFFIXES = (".billing.v1", ".intervals.v1")
IDENTITY = {
    # Fields naming the subject an event is about, per topic (without prefix).
    "eligibility.v1": ("customer_id", "premise_id", "program"),
    "anomalies.v1": ("service_point_id", "premise_id", "customer_id", "code"),
    "account-events.v1": ("service_point_id", "account_id", "type"),
    "corrections.v1": ("service_point_id", "kind", "date_to", "channel", "interval_end"),
}


def strip_positions(v, keep=("file", "line")):
    """The event without what names a run's own topics and offsets: of its
    cause and its reasons' sources only the fields in keep stay."""
    v = dict(v)
    v.pop("event_id", None)
    if isinstance(v.get("cause"), dict):
        v["cause"] = {k: x for k, x in v["cause"].items() if k in keep}
    if isinstance(v.get("reasons"), list):
        rs = []
        for r in v["reasons"]:
            r = dict(r)
            if isinstance(r.get("source"), dict):
                r["source"] = {k: x for k, x in r["source"].items() if k in keep}
            rs.append(r)
        v["reasons"] = rs
    return v


def from_input(event_id):
    # <prefix><topic>-<partition>-<offset>-<index>
    topic = event_id.rsplit("-", 3)[0]
    return topic.endswith(INPUT_SUFFIXES)


def load(path):
    """Records of one topic dump, in partition then offset order."""
    recs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                sys.exit(f"{path}:{n}: not a JSON line of `usagestream tail`: {e}")
    recs.sort(key=lambda r: (r["partition"], r["offset"]))
    return recs


def summarize(topic, recs):
    """(problems, exact multiset, last per subject, count) of one topic."""
    problems = []
    ids = Counter(r["value"].get("event_id") for r in recs if isinstance(r.get("value"), dict))
    dups = [i for i, c in ids.items() if c > 1]
    if dups:
        problems.append(f"{len(dups)} event ids appear more than once (e.g. {dups[0]})")
    exact, last = Counter(), {}
    idf = IDENTITY.get(topic, ())
    for r in recs:
        v = r.get("value")
        if not isinstance(v, dict):
            exact[json.dumps([r.get("key"), v], sort_keys=True)] += 1
            continue
        if from_input(v.get("event_id", "")):
            exact[json.dumps([r.get("key"), strip_positions(v)], sort_keys=True)] += 1
        else:
            # Which input made the last change depends on the coalescing
            # too: the state is compared, not its cause.
            subject = json.dumps([r.get("key")] + [v.get(f) for f in idf], sort_keys=True)
            last[subject] = json.dumps([r.get("key"), strip_positions(v, keep=())], sort_keys=True)
    return problems, exact, last, len(recs)


def compare(ref_dir, run_dir, out=sys.stdout):
    topics = sorted({f[:-6] for d in (ref_dir, run_dir) for f in os.listdir(d) if f.endswith(".jsonl")})
    bad = 0
    for t in topics:
        paths = [os.path.join(d, t + ".jsonl") for d in (ref_dir, run_dir)]
        if not all(os.path.exists(p) for p in paths):
            print(f"{t}: MISMATCH, dumped for one run only", file=out)
            bad += 1
            continue
        (p1, e1, l1, n1), (p2, e2, l2, n2) = (summarize(t, load(p)) for p in paths)
        problems = [f"reference run: {p}" for p in p1] + [f"compared run: {p}" for p in p2]
        if e1 != e2:
            only1, only2 = sum((e1 - e2).values()), sum((e2 - e1).values())
            problems.append(f"events from the input differ: {only1} only in the reference, {only2} only in the compared run")
        if l1 != l2:
            diff = sum(1 for s in set(l1) | set(l2) if l1.get(s) != l2.get(s))
            problems.append(f"last event differs for {diff} of {len(set(l1) | set(l2))} subjects")
        counts = f"records {n1} / {n2}, from the input {sum(e1.values())} / {sum(e2.values())}, subjects {len(l1)} / {len(l2)}"
        if problems:
            bad += 1
            print(f"{t}: MISMATCH ({counts}): " + "; ".join(problems), file=out)
        else:
            print(f"{t}: same ({counts})", file=out)
    return bad


def self_test():
    """The comparison finds what it must: run on made-up dumps."""
    import tempfile

    def ev(prefix, src, off, idx, **kw):
        v = {"event_id": f"{prefix}{src}-0-{off}-{idx}", "cause": {"topic": prefix + "billing.v1", "partition": 0, "offset": off, "file": "f.gz", "line": off + 2}}
        v.update(kw)
        return v

    def dump(d, topic, recs):
        with open(os.path.join(d, topic + ".jsonl"), "w") as f:
            for i, (key, v) in enumerate(recs):
                f.write(json.dumps({"partition": 0, "offset": i, "key": key, "value": v}) + "\n")

    def case(ref, run):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            for d, recs, pfx in ((a, ref, "a."), (b, run, "b.")):
                for topic, rs in recs(pfx).items():
                    dump(d, topic, rs)
            with open(os.devnull, "w") as null:
                return compare(a, b, null)

    acct = lambda p, n=3: {"account-events.v1": [("SP1", ev(p, "billing.v1", i, 0, service_point_id="SP1", type="ACTIVATED", date=i)) for i in range(n)]}
    elig = lambda p, flips: {"eligibility.v1": [("C1", ev(p, "repartition-memberships.v1", i, 0, customer_id="C1", premise_id="P1", program="x", eligible=e)) for i, e in enumerate(flips)]}
    checks = [
        ("same events under other prefixes and offsets", case(acct, acct), 0),
        ("an input event missing", case(acct, lambda p: acct(p, 2)), 1),
        ("an input event duplicated (same id twice)", case(acct, lambda p: {"account-events.v1": acct(p)["account-events.v1"] + acct(p)["account-events.v1"][:1]}), 1),
        ("derived events coalesced differently, same last state", case(lambda p: elig(p, [True, False, True]), lambda p: elig(p, [True])), 0),
        ("derived events ending in another state", case(lambda p: elig(p, [True, False]), lambda p: elig(p, [True])), 1),
        ("a topic dumped for one run only", case(acct, lambda p: {**acct(p), **elig(p, [True])}), 1),
    ]
    failed = [name for name, got, want in checks if got != want]
    for name in failed:
        print(f"bench-compare self-test failed: {name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(1 if compare(sys.argv[1], sys.argv[2]) else 0)
