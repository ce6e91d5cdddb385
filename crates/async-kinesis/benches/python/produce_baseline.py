"""The Python library's producer on the same workload as benches/produce.rs, for comparison.

Measures items/s and the process's CPU seconds per 100k items (the Rust bench's columns), with
the producer limits lifted and no partition keys given, as in the published baseline.

Run with the interop interpreter of scripts/local-stack against a kinesalite endpoint:
    .local-stack/py-interop/bin/python crates/async-kinesis/benches/python/produce_baseline.py \
        http://127.0.0.1:4569 50000
"""

import asyncio
import resource
import sys
import time
import uuid

from kinesis import JsonLineProcessor, JsonProcessor, MsgpackProcessor, Producer
from kinesis.processors import KPLJsonProcessor


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def item(i):
    return {"id": i, "user": f"user-{i % 1000}", "kind": "order.created", "payload": "x" * 950}


async def run(endpoint, name, processor, shards, items):
    stream = f"py-bench-{uuid.uuid4().hex[:8]}"
    async with Producer(
        stream_name=stream,
        endpoint_url=endpoint,
        region_name="us-east-1",
        processor=processor,
        put_rate_limit_per_shard=1_000_000,
        put_bandwidth_limit_per_shard=1_000_000,
        create_stream=True,
        create_stream_shards=shards,
    ) as producer:
        cpu_before = cpu_seconds()
        started = time.monotonic()
        for i in range(items):
            await producer.put(item(i))
        await producer.flush()
        seconds = time.monotonic() - started
        cpu = cpu_seconds() - cpu_before
    print(f"| {name} (Python) | {shards} | {items} | {seconds:.2f} | {items / seconds:.0f} | {cpu * 100_000 / items:.2f} |")


async def main():
    endpoint = sys.argv[1]
    items = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    print("| processor | shards | items | seconds | items/s | CPU s per 100k items |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for shards in (1, 4):
        for name, processor in (
            ("JsonProcessor", JsonProcessor()),
            ("JsonLineProcessor", JsonLineProcessor()),
            ("MsgpackProcessor", MsgpackProcessor()),
            ("KplJsonProcessor", KPLJsonProcessor()),
        ):
            await run(endpoint, name, processor, shards, items)


asyncio.run(main())
