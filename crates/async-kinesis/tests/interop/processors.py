"""Interop helper: runs the real Python async-kinesis processors and aws-kinesis-agg.

Reads one JSON request on stdin, writes one JSON answer on stdout:
  {"read": [{"case", "processor", "records": [{"data": hex, "partition_key"}]}],
   "write": [{"case", "processor", "items": [...], "keys": [...], "ehks": [...]}]}
Items travel as JSON; bytes are tagged {"$bin": hex}; record data is hex. Processor "aws_kinesis_agg" writes
string items with aws-kinesis-agg's RecordAggregator (real keys and explicit hash keys); read with it, it only
deaggregates (answering "kpl", plain records passed through as the KCL does).

JSON numbers travel as text so that nothing on the way can change them: ["f", repr] for a float, ["i", digits]
for an int.
  {"numbers": {"write": [{"case", "processor", "style": "stdlib"|"compact", "items": [[number, ...], ...]}],
               "read": [{"case", "processor", "records": [{"data": hex, "partition_key"}]}]}}
Written items alternate between a list of the numbers and a dict {"k0": n0, "k1": n1, ...}. The answer gives
the records written and the numbers of each item as Python holds them; for reading, the numbers of every item
Python parses, per record.
"""

import base64
import contextlib
import json
import sys

from aws_kinesis_agg import aggregator as agg
from aws_kinesis_agg import deaggregator
from kinesis import processors, serializers


def to_wire(obj):
    if isinstance(obj, bytes):
        return {"$bin": obj.hex()}
    if isinstance(obj, list):
        return [to_wire(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items()}
    return obj


def from_wire(obj):
    if isinstance(obj, dict):
        if set(obj) == {"$bin"}:
            return bytes.fromhex(obj["$bin"])
        return {k: from_wire(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_wire(x) for x in obj]
    return obj


def read_case(case):
    # "aws_kinesis_agg" only deaggregates (it also passes plain records through, which the
    # Python library's KPL processors cannot parse).
    agg_only = case["processor"] == "aws_kinesis_agg"
    processor = None if agg_only else getattr(processors, case["processor"])()
    items, kpl = [], []
    for record in case["records"]:
        data = bytes.fromhex(record["data"])
        if processor is not None:
            items.append([to_wire(x) for x in processor.parse(data)])
        if agg_only or case["processor"].startswith("KPL"):
            boto = {
                "Data": data,
                "PartitionKey": record["partition_key"],
                "SequenceNumber": "1",
                "ApproximateArrivalTimestamp": 0,
            }
            for user in deaggregator.iter_deaggregate_records(boto, data_format="Boto3"):
                k = user["kinesis"]
                kpl.append(
                    [
                        k["partitionKey"],
                        k.get("explicitHashKey"),
                        k.get("subSequenceNumber"),
                        # A user record of an aggregate carries base64; a plain record passed
                        # through keeps the raw bytes it came with.
                        (
                            base64.b64decode(k["data"])
                            if "subSequenceNumber" in k
                            else k["data"]
                        ).decode("utf-8"),
                    ]
                )
    return {"items": items, "kpl": kpl}


def out_record(data, partition_key, ehk, n):
    return {
        "data": data.hex(),
        "partition_key": partition_key,
        "explicit_hash_key": ehk,
        "n": n,
    }


def write_case(case):
    items = [from_wire(x) for x in case["items"]]
    keys = case.get("keys") or [None] * len(items)
    if case["processor"] == "aws_kinesis_agg":
        ehks = case.get("ehks") or [None] * len(items)
        ra = agg.RecordAggregator()
        records = []
        for item, key, ehk in zip(items, keys, ehks):
            full = ra.add_user_record(key, item.encode("utf-8"), ehk)
            if full:
                records.append(full)
        last = ra.clear_and_get()
        if last:
            records.append(last)
        out = []
        for r in records:
            pk, ehk, data = r.get_contents()
            out.append(out_record(data, pk, ehk or None, r.get_num_user_records()))
        return {"records": out}
    processor = getattr(processors, case["processor"])()
    outputs = []
    for item, key in zip(items, keys):
        outputs.extend(processor.add_item(item, key))
    if processor.has_items():
        outputs.extend(processor.get_items())
    return {"records": [out_record(o.data, o.partition_key, None, o.n) for o in outputs]}


def number_from(spec):
    kind, text = spec
    return float(text) if kind == "f" else int(text)


def number_spec(x):
    return ["f", repr(x)] if isinstance(x, float) else ["i", str(x)]


def numbers_of(obj):
    if isinstance(obj, (list, tuple)):
        return [spec for x in obj for spec in numbers_of(x)]
    if isinstance(obj, dict):
        return [spec for x in obj.values() for spec in numbers_of(x)]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return [number_spec(obj)]
    return []


class CompactJson:
    """json with compact separators, as ujson writes (the library uses ujson when installed)."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(obj):
        return json.dumps(obj, separators=(",", ":"))


@contextlib.contextmanager
def json_style(style):
    saved = serializers.json
    serializers.json = CompactJson if style == "compact" else json
    try:
        yield
    finally:
        serializers.json = saved


def write_numbers_case(case):
    items = []
    for i, specs in enumerate(case["items"]):
        numbers = [number_from(spec) for spec in specs]
        items.append(numbers if i % 2 == 0 else {f"k{j}": n for j, n in enumerate(numbers)})
    with json_style(case["style"]):
        processor = getattr(processors, case["processor"])()
        outputs = []
        for item in items:
            outputs.extend(processor.add_item(item))
        if processor.has_items():
            outputs.extend(processor.get_items())
    return {
        "records": [out_record(o.data, o.partition_key, None, o.n) for o in outputs],
        "numbers": [numbers_of(item) for item in items],
    }


def read_numbers_case(case):
    processor = getattr(processors, case["processor"])()
    return {
        "items": [
            [numbers_of(item) for item in processor.parse(bytes.fromhex(record["data"]))]
            for record in case["records"]
        ]
    }


def main():
    request = json.load(sys.stdin)
    numbers = request.get("numbers", {})
    answer = {
        "read": {c["case"]: read_case(c) for c in request.get("read", [])},
        "write": {c["case"]: write_case(c) for c in request.get("write", [])},
        "numbers": {
            "read": {c["case"]: read_numbers_case(c) for c in numbers.get("read", [])},
            "write": {c["case"]: write_numbers_case(c) for c in numbers.get("write", [])},
        },
    }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
