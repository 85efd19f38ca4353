"""Check what `python -m build` made: one wheel and one sdist, each carrying LICENSE and the plugin."""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path


def main(dist: Path) -> int:
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    problems = [] if len(wheels) == 1 and len(sdists) == 1 else [f"want one wheel and one sdist in {dist}"]
    if wheels:
        with zipfile.ZipFile(wheels[0]) as wheel:
            names = wheel.namelist()
            info = next((n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA")), "")
            metadata = wheel.read(f"{info}/METADATA").decode()
            entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        for wanted in (f"{info}/licenses/LICENSE", "pytest_sip_statsd.py", "sip_statsd/py.typed"):
            if wanted not in names:
                problems.append(f"{wheels[0].name} lacks {wanted}")
        for wanted in ("License-Expression: MIT", "License-File: LICENSE", "Project-URL: "):
            if wanted not in metadata:
                problems.append(f"{wheels[0].name} METADATA lacks {wanted!r}")
        if "sip_statsd = pytest_sip_statsd" not in entry_points:
            problems.append(f"{wheels[0].name}: the pytest11 entry point is not pytest_sip_statsd")
    if sdists:
        with tarfile.open(sdists[0]) as sdist:
            names = sdist.getnames()
        top = sdists[0].name.removesuffix(".tar.gz")
        for wanted in ("LICENSE", "pytest_sip_statsd.py", "README.md", "CHANGELOG.md"):
            if f"{top}/{wanted}" not in names:
                problems.append(f"{sdists[0].name} lacks {wanted}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{wheels[0].name} and {sdists[0].name}: LICENSE, the pytest plugin and the metadata are there")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
