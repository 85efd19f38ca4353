"""Hot-path cost of the helpers next to a bare Python call, in one process.

    python benchmarks/hot_path.py

Interleaved rounds, best of N; the ratio to the bare call matters, not the absolute time.
The helpers run with the `off` backend; 50,000 calls a round stay under the
per-series sample cap (100,000), and a flush between rounds empties it.
"""

from __future__ import annotations

import timeit

import sip_statsd as sm

sm.configure(backend="off", flush_interval=3600)
invite_result = sm.invite_result
transaction_timeout = sm.transaction_timeout
observe_call_qos = sm.observe_call_qos


def bare(direction: str, code: int) -> None:
    pass


CASES = {
    "bare(a, b)": "bare('inbound', 200)",
    "invite_result hit": "invite_result('inbound', 200)",
    "invite_result drop": "invite_result('sideways', 200)",
    "transaction_timeout": "transaction_timeout('INVITE')",
    "observe_call_qos x4": "observe_call_qos(rtt_ms=38.5, jitter_ms=4.2, loss_fraction=0.003, mos_estimate=4.3)",
}


def main(rounds: int = 9, number: int = 50_000) -> None:
    best = dict.fromkeys(CASES, float("inf"))
    for _ in range(rounds):
        for name, stmt in CASES.items():
            t = timeit.timeit(stmt, globals=globals(), number=number) / number * 1e9
            best[name] = min(best[name], t)
            sm.flush()
    floor = best["bare(a, b)"]
    for name, ns in best.items():
        print(f"{name:22s} {ns:8.1f} ns/call  {ns / floor:5.2f}x bare")


if __name__ == "__main__":
    main()
