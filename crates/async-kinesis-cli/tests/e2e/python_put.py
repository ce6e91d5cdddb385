"""Writes items to Kinesis with the real Python async-kinesis Producer, one stream per case.

Reads one JSON request on stdin:
  {"endpoint": URL, "cases": [{"stream", "processor", "items": [...], "keys": [...]}]}
Processor names are the Python library's (StringProcessor, KPLJsonProcessor, ...). Each stream
must exist. Prints nothing; exits non-zero on any failure.
"""

import asyncio
import json
import sys

from kinesis import Producer, processors


async def put_case(endpoint, case):
    processor = getattr(processors, case["processor"])()
    keys = case.get("keys") or [None] * len(case["items"])
    async with Producer(
        stream_name=case["stream"],
        endpoint_url=endpoint,
        region_name="us-east-1",
        processor=processor,
    ) as producer:
        for item, key in zip(case["items"], keys):
            await producer.put(item, partition_key=key)
        await producer.flush()


async def main():
    request = json.load(sys.stdin)
    for case in request["cases"]:
        await put_case(request["endpoint"], case)


asyncio.run(main())
