"""What importing sip-statsd costs, next to `import datadog` and `import statsd`.

    python benchmarks/import_cost.py [--rounds 5]

Each import runs in a fresh interpreter (`python -c`), rounds interleaved so that a busy
machine weighs on all alike; the figure is the best round of the import alone (timed inside
the process, so interpreter start-up is left out), with the modules it loaded, the threads
running after it, the peak resident memory of the whole process, and whether `requests` or
the datadog package's API client were loaded. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

PROBE = """
import json, resource, sys, threading, time
before = set(sys.modules)
start = time.perf_counter()
import {module}
elapsed = time.perf_counter() - start
print(json.dumps({{
    "ms": elapsed * 1000,
    "modules": len(set(sys.modules) - before),
    "threads": threading.active_count() - 1,
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "requests": "requests" in sys.modules,
    "datadog_api": "datadog.api" in sys.modules,
}}))
"""
MODULES = ("sip_statsd", "datadog", "statsd")


def measure(module: str) -> dict[str, float | int | bool]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    runs: dict[str, list[dict[str, float | int | bool]]] = {m: [] for m in MODULES}
    for _ in range(rounds):
        for module in MODULES:
            runs[module].append(measure(module))
    print(f"import cost, best of {rounds} fresh processes, Python {sys.version.split()[0]}")
    print(f"{'import':12} {'best ms':>8} {'worst ms':>9} {'modules':>8} {'threads':>8} {'peak MiB':>9}  loads")
    for module, results in runs.items():
        best = min(results, key=lambda r: float(r["ms"]))
        worst = max(float(r["ms"]) for r in results)
        loads = [name for name in ("requests", "datadog_api") if best[name]]
        print(
            f"{module:12} {best['ms']:>8.1f} {worst:>9.1f} {best['modules']:>8} {best['threads']:>8} "
            f"{best['peak_mib']:>9.1f}  {', '.join(loads) or '-'}"
        )
    base = min(float(r["ms"]) for r in runs["statsd"])
    print(f"sip_statsd / statsd: {min(float(r['ms']) for r in runs['sip_statsd']) / base:.1f}x")


if __name__ == "__main__":
    main()
