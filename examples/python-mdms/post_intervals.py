#!/usr/bin/env python3
"""Post an MDMS interval export to usagestream's POST /v1/intervals.

An example adapter for an MDMS whose export is a CSV file, written with the
Python standard library only. Each CSV row becomes one NDJSON line of the
endpoint (docs/openapi.yaml, IntervalLine); the rows are posted in batches,
and the answer's result per line says which were accepted, which the read
contract refused (they are kept on rejected.v1 with their line, as rejected
file rows are) and which to send again.

The export's columns (a header line first, any order, extra columns ignored):

    MeterID        the service point id
    Channel        service_quantity_identifier; empty: the main channel
    IntervalEndUTC the end of the interval in UTC: 2024-06-01T04:15:00Z or
                   2024-06-01 04:15:00 (the server puts it in the utility's
                   time zone, usagestream run --intervals-tz)
    IntervalLength minutes: 5, 15, 30, 60 or 1440
    Value          usage over the interval
    UOM            units, e.g. KWH
    Quality        ACTUAL, ESTIMATED or EDITED (A, E or U)

Usage:

    USAGESTREAM_API_TOKEN=... post_intervals.py [--url URL] [--batch N] EXPORT.csv

Exit status: 0 every read accepted; 3 some rejected (listed on stderr); 1 the
server could not be reached or kept failing.
"""

import argparse
import csv
import json
import os
import sys
import time
import urllib.error
import urllib.request

QUALITY = {"ACTUAL": "A", "A": "A", "ESTIMATED": "E", "E": "E", "EDITED": "U", "U": "U", "": ""}
COLUMNS = ["MeterID", "IntervalEndUTC", "IntervalLength", "Value", "UOM"]


def number(text):
    """The value as a JSON number when it is one; else the text itself, so
    that the server's contract names the fault (and keeps the row)."""
    try:
        v = float(text)
    except ValueError:
        return text
    return int(v) if v.is_integer() and "." not in text else v


def to_line(row):
    end = row["IntervalEndUTC"].strip().replace(" ", "T")
    if end and not end.endswith("Z") and "+" not in end[10:] and "-" not in end[10:]:
        end += "Z"
    line = {
        "service_point_id": row["MeterID"],
        "interval_end": end,
        "minutes": number(row["IntervalLength"].strip()),
        "value": number(row["Value"].strip()),
        "units": row["UOM"].strip(),
    }
    quality = row.get("Quality", "") or ""
    line["is_estimate"] = QUALITY.get(quality.strip().upper(), quality)
    if row.get("Channel"):
        line["channel"] = row["Channel"]
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False)


def post(url, token, lines, attempts=5):
    """POSTs lines; returns the answer. Retries 503 (busy, or reads Kafka
    did not take) after Retry-After, sending only the failed lines again."""
    body = ("\n".join(lines) + "\n").encode("utf-8")
    for attempt in range(attempts):
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson"})
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            answer = json.load(e) if e.headers.get("Content-Type", "").startswith("application/json") else {}
            if e.code != 503 or attempt == attempts - 1:
                raise SystemExit("POST %s: %d %s" % (url, e.code, answer.get("error", e.reason)))
            failed = {r["line"] for r in answer.get("results", []) if r["status"] == "failed"}
            if failed:  # some reads were delivered: send only the others again
                kept = [l for i, l in enumerate(lines, 1) if i in failed]
                retry = post(url, token, kept, attempts - attempt - 1)
                return merge(answer, retry, sorted(failed))
            time.sleep(float(e.headers.get("Retry-After", "1")))
    raise SystemExit("POST %s: the server stayed busy" % url)


def merge(first, retry, lines):
    """The first answer with the failed lines' results of the retry."""
    by_line = {r["line"]: r for r in first["results"]}
    for r in retry["results"]:
        r = dict(r, line=lines[r["line"] - 1])
        by_line[r["line"]] = r
    results = [by_line[k] for k in sorted(by_line)]
    count = lambda s: sum(1 for r in results if r["status"] == s)
    return {"lines": len(results), "accepted": count("accepted"), "rejected": count("rejected"),
            "failed": count("failed"), "results": results}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", help="the MDMS CSV export")
    ap.add_argument("--url", default="http://127.0.0.1:8088/v1/intervals")
    ap.add_argument("--batch", type=int, default=5000, help="reads per POST (the server takes up to 50,000)")
    args = ap.parse_args()
    token = os.environ.get("USAGESTREAM_API_TOKEN", "")

    accepted = rejected = 0
    with open(args.export, newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (rows.fieldnames or [])]
        if missing:
            raise SystemExit("%s: the header lacks %s" % (args.export, ", ".join(missing)))
        batch, csv_lines = [], []
        def flush():
            nonlocal accepted, rejected
            if not batch:
                return
            answer = post(args.url, token, batch)
            accepted += answer["accepted"]
            rejected += answer["rejected"]
            if answer["failed"]:
                raise SystemExit("%d reads were not delivered; run again" % answer["failed"])
            for r in answer["results"]:
                if r["status"] == "rejected":
                    why = "; ".join("%s %s: %s" % (e.get("field", ""), e["code"], e["message"]) for e in r.get("errors", []))
                    print("%s line %d: rejected: %s" % (args.export, csv_lines[r["line"] - 1], why or "(errors omitted)"), file=sys.stderr)
            batch.clear()
            csv_lines.clear()
        for row in rows:
            batch.append(to_line(row))
            csv_lines.append(rows.line_num)
            if len(batch) >= args.batch:
                flush()
        flush()
    print("reads %d = accepted %d + rejected %d" % (accepted + rejected, accepted, rejected))
    return 3 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
