"""PromQL over the generated metrics: selectors, sums of rates, ratios that survive missing series.

The library never sends a zero count, so statsd_exporter exposes a series only from its first
event on: "no 3xx yet" is an absent series, not a 0. A ratio whose numerator or subtracted
term is a sum over absent series would be empty for the whole group instead of 0.
`or vector(0)` repairs that only without grouping (its one element has no labels, so it
matches no `env`/`service` group); `zero_or(term, like)` adds, per group, `like * 0` where
`term` has nothing, which is `or vector(0)` per group. Denominators are kept only where they
are above 0 (`> 0`), so a quiet window gives no value rather than NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .names import PromMetric


def _matchers(filters: Mapping[str, str]) -> list[str]:
    """`{"code": "=~3.."}` -> `code=~"3.."`: the operator is the value's start (=, !=, =~, !~)."""
    out = []
    for key, spec in filters.items():
        op = next(o for o in ("=~", "!~", "!=", "=") if spec.startswith(o))
        out.append(f'{key}{op}"{spec[len(op) :]}"')
    return out


@dataclass(frozen=True)
class PromQL:
    """Queries of one build: the families' Prometheus names, the tags, the window.

    In a dashboard (`variables=True`) every selector filters on the tag variables
    (`env=~"$env"`) and `by` keys are the panel's own; in rules the tags are group keys.
    """

    metrics: Mapping[str, PromMetric]
    tags: tuple[str, ...]
    window: str
    variables: bool = False

    def name(self, family: str, suffix: str = "") -> str:
        return self.metrics[family].name + suffix

    def selector(self, family: str, filters: Mapping[str, str] | None = None, suffix: str = "") -> str:
        items = _matchers(filters or {})
        if self.variables:
            items += [f'{t}=~"${t}"' for t in self.tags]
        return self.name(family, suffix) + ("{" + ",".join(items) + "}" if items else "")

    def by(self, keys: Sequence[str] = ()) -> str:
        group = [*(() if self.variables else self.tags), *keys]
        return f"sum by ({', '.join(group)}) " if group else "sum "

    def rate(
        self,
        family: str,
        filters: Mapping[str, str] | None = None,
        by: Sequence[str] = (),
        *,
        fn: str = "rate",
        window: str | None = None,
        suffix: str = "",
    ) -> str:
        """`sum by (tags, by) (rate(metric{filters}[window]))`; `fn="increase"` for counts."""
        inner = f"{fn}({self.selector(family, filters, suffix)}[{window or self.window}])"
        return f"{self.by(by)}({inner})"

    def quantile(self, q: float, family: str, filters: Mapping[str, str] | None = None, by: Sequence[str] = ()) -> str:
        return f"histogram_quantile({q:g}, {self.rate(family, filters, (*by, 'le'), suffix='_bucket')})"

    def mean(self, family: str, filters: Mapping[str, str] | None = None, by: Sequence[str] = ()) -> str:
        total = self.rate(family, filters, by, suffix="_sum")
        count = self.rate(family, filters, by, suffix="_count")
        return f"{total}\n/\n({count} > 0)"


def zero_or(term: str, like: str) -> str:
    """`term`, or 0 for each group of `like` where `term` has no series."""
    return f"({term}\n  or\n{like} * 0)"


def plus(a: str, b: str) -> str:
    """a + b per group, each 0 where the other has a group and it has none (a peer with only timeouts)."""
    return f"({zero_or(a, b)}\n+\n{zero_or(b, a)})"


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator per group: 0 without numerator series, nothing without traffic."""
    return f"{zero_or(numerator, denominator)}\n/\n({denominator} > 0)"
