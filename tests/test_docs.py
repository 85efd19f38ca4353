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
