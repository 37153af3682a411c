"""Send a bounded load to the REST scoring endpoint; print errors and latency percentiles.

    python scripts/load_serve.py [--url http://127.0.0.1:5001] [--requests 1000]
                                 [--concurrency 4] [--rows 1]

Start the server first (`make serve`, or `lcp serve --port 5001`). Each request posts
``--rows`` raw lead records drawn from data/processed/test.csv.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["purchases", "time_spent", "n_visits", "customer_group", "onboarding"]


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5001")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rows", type=int, default=1, help="lead records per request")
    arguments = parser.parse_args()

    leads = pd.read_csv(ROOT / "data" / "processed" / "test.csv")[COLUMNS]
    records = json.loads(leads.to_json(orient="records"))
    bodies = [
        json.dumps(
            {"dataframe_records": [records[(i + k) % len(records)] for k in range(arguments.rows)]}
        ).encode()
        for i in range(arguments.requests)
    ]

    def send(body: bytes) -> tuple[float, str | None]:
        request = urllib.request.Request(
            f"{arguments.url}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
                error = None if response.status == 200 else f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as problem:
            error = str(problem)
        return time.perf_counter() - started, error

    started = time.perf_counter()
    with ThreadPoolExecutor(arguments.concurrency) as pool:
        results = list(pool.map(send, bodies))
    wall = time.perf_counter() - started
    latencies = sorted(seconds * 1000 for seconds, _ in results)
    errors = [error for _, error in results if error]
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{len(results)} requests ({arguments.rows} rows each, {arguments.concurrency} at a time) "
        f"in {wall:.1f} s: {len(results) / wall:.0f} requests/s, {len(errors)} errors"
    )
    print(
        f"latency ms: p50 {cuts[49]:.1f}, p90 {cuts[89]:.1f}, p99 {cuts[98]:.1f}, "
        f"max {latencies[-1]:.1f}"
    )
    if errors:
        print(f"first error: {errors[0]}")


if __name__ == "__main__":
    main()
