"""estimate_mos over a grid of RTT x jitter x loss, for both codecs, as Markdown tables.

    python benchmarks/mos_grid.py

Each cell is the MOS (and its ITU-T G.109 grade initial) of the E-model with the one-way
delay rtt/2 + 2 x jitter; not a timing, a table to read the model's shape from.
"""

from __future__ import annotations

import sip_statsd as sm
from sip_statsd._sip.quality import grade_of

RTTS = (20.0, 100.0, 300.0, 600.0)
JITTERS = (0.0, 20.0, 60.0)
LOSSES = (0.0, 0.01, 0.05, 0.20)


def table(codec: str) -> str:
    head = "| RTT ms | jitter ms | " + " | ".join(f"loss {loss:.0%}" for loss in LOSSES) + " |"
    rows = [head, "|---:|---:|" + "---:|" * len(LOSSES)]
    for rtt in RTTS:
        for jitter in JITTERS:
            cells = []
            for loss in LOSSES:
                mos = sm.estimate_mos(rtt, jitter, loss, codec)
                cells.append(f"{mos:.2f} {grade_of(mos)[:2]}")
            rows.append(f"| {rtt:g} | {jitter:g} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    for codec in sm.CODECS:
        print(f"\n{codec} (R unimpaired {sm.r_factor(0.0, codec=codec):.1f}):\n")
        print(table(codec))


if __name__ == "__main__":
    main()
