"""README.md and docs/: every relative link lands, and numbers a command can produce are checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sip_statsd as sm

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_lands(page):
    for target in re.findall(r"\]\(([^)#]*)(?:#([^)]*))?\)", page.read_text()):
        path, anchor = target
        if path.startswith(("http://", "https://")):
            continue
        landed = (page.parent / path).resolve() if path else page
        assert landed.exists(), f"{page.name} links to {path}, which is not there"
        if anchor and landed.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", landed.read_text(), re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{page.name}: no heading #{anchor} in {path}"


def test_readme_series_count_is_the_catalogs():
    readme = (ROOT / "README.md").read_text()
    sip_series = sum(len(f.all_series) for f in sm.catalog.families)
    assert f"({sip_series} SIP series)" in readme


def test_readme_first_example_uses_the_reason_the_event_table_gives_a_received_bye():
    readme = (ROOT / "README.md").read_text()
    events = (ROOT / "docs" / "events.md").read_text()
    assert '`bye(dir, "remote", "user-hangup")`' in events
    assert 'sm.bye(sm.Direction.INBOUND, "remote", sm.BYE_REASON_USER_HANGUP)' in readme
    assert 'sm.bye(sm.Direction.INBOUND, "remote", sm.BYE_REASON_NORMAL)' not in readme


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_snippets_import_what_they_use(page):
    """A snippet that calls `sm.` imports it (a reader copies one block, not the page)."""
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S):
        if re.search(r"\bsm\.", block):
            assert "import sip_statsd as sm" in block, f"{page.name}: a snippet uses sm. without importing it"


def test_call_quality_mos_table_is_what_estimate_mos_gives():
    """docs/call-quality.md's grid points, as `python benchmarks/mos_grid.py` computes them."""
    text = (ROOT / "docs" / "call-quality.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", text, re.M)
    assert len(rows) == 4
    for rtt, jitter, *cells in rows:
        computed = [f"{sm.estimate_mos(float(rtt), float(jitter), loss):.2f}" for loss in (0.0, 0.01, 0.05, 0.20)]
        assert cells == computed, (rtt, jitter)
    text = " ".join(text.split())
    best = f"R is {sm.r_factor(0.0):.1f} and the MOS {sm.estimate_mos(0.0):.2f}"
    g729 = f"(G.729: R {sm.r_factor(0.0, codec='G.729'):.1f}, MOS {sm.estimate_mos(0.0, codec='G.729'):.2f})"
    assert f"{best} {g729}" in text


def test_metrics_response_code_series_count_is_the_catalogs():
    text = " ".join((ROOT / "docs" / "metrics.md").read_text().split())
    codes = len(sm.DEFAULT_RESPONSE_CODES)
    family = next(f for f in sm.catalog.families if f.name == sm.METRIC_INVITE_RESPONSE_TOTAL)
    assert f"(2 \u00d7 ({codes} + 6) = {len(family.all_series)} series)" in text


def test_every_install_command_names_an_extra_that_installs_today():
    """Not on an index yet: `pip install 'sip-statsd[x]'` fails; `'.[x]'` from a checkout works (issue 25 item 7)."""
    import tomllib

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    texts = {p.name: p.read_text() for p in PAGES}
    texts |= {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "sip_statsd").rglob("*.py")}
    for name, text in texts.items():
        assert not re.search(r"sip-statsd\[", text), f"{name}: `sip-statsd[...]` is not installable until published"
        for extra in re.findall(r"pip install '\.\[([\w,-]+)\]'", text):
            assert set(extra.split(",")) <= extras, f"{name}: no extra {extra!r}"
        assert not re.search(r"pip install \"\.\[", text), f"{name}: spell it '.[extra]' as everywhere else"


def _stated(page: str, pattern: str) -> tuple[int, ...]:
    found = re.search(pattern, (ROOT / "docs" / page).read_text(), re.S)
    assert found, f"docs/{page} no longer states {pattern!r}: keep the figure and this test together"
    return tuple(int(n.replace(",", "")) for n in found.groups())


def test_the_figures_the_docs_state_about_generated_output_are_the_generators():
    """A figure in the docs is a test (issue 25 item 8): the dashboard, the Grafana panels, the series."""
    from sip_statsd import dashboard, prometheus

    # A fresh instance: the process-wide one holds whatever families earlier tests defined on it.
    metrics = sm.SipMetrics(backend="memory")
    board, _ = dashboard.build(metrics)
    groups = board["widgets"]
    notes = sum(1 for g in groups for w in g["definition"]["widgets"] if w["definition"]["type"] == "note")
    total = dashboard.count_widgets(groups)
    stated = _stated("dashboards.md", r"(\d+) widgets: (\d+) groups, their (\d+) notes, (\d+) charts")
    assert stated == (total, len(groups), notes, total - len(groups) - notes)

    panels = prometheus.build(metrics).dashboard["panels"]
    kinds = [p["type"] for p in panels]
    stated = _stated("prometheus.md", r"\((\d+)\s+panels: (\d+) rows, their (\d+) notes, (\d+) charts")
    assert stated == (
        len(panels),
        kinds.count("row"),
        kinds.count("text"),
        len(panels) - kinds.count("row") - kinds.count("text"),
    )

    families = {f.name: f for f in metrics.catalog.families}
    assert _stated("metrics.md", r"= (\d+) series\)") == (len(families["sip_invite_response_total"].all_series),)
    assert _stated("performance.md", r"the catalog \((\d+) series made at import\)") == (
        sum(len(f.all_series) for f in families.values()),
    )
    assert _stated("performance.md", r"`request_result` \((\d+) series\)") == (
        len(families["sip_request_result_total"].all_series),
    )
    assert _stated("performance.md", r"`bye` \((\d+) series\)") == (len(families["sip_bye_total"].all_series),)
    billed = re.search(r"can bill per host \((\d+) with the default catalog", (ROOT / "README.md").read_text())
    stated_total = re.search(r"at most ([\d,]+) \(", (ROOT / "docs" / "metrics.md").read_text())
    assert billed, "the README states the billing figure"
    assert stated_total, "docs/metrics.md states the billing figure"
    assert billed.group(1) == stated_total.group(1).replace(",", "")  # docs/metrics.md's block is the command's


def test_no_example_sends_a_bye_the_event_table_never_produces():
    """A BYE we receive is user-hangup in the event table: no example shows ("remote", "normal")."""
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"bye(_outbound)?\([^)]*\"remote\", \"(normal|timer-expired|error)\"", text), page.name
