"""tox finds every Python the machine has, pyenv's included (loaded by tox from beside tox.ini).

pyenv's `python3.12` shim answers only when its version is enabled, and tox asks for
interpreters with an environment where the shims answer nothing: so each installed
3.11 / 3.12 / 3.13 (the newest patch of each) has its own bin directory put on PATH here.
`python -m tox` (the README's command) and `.ci/run` both rely on this; without pyenv it
does nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

WANTED = ("3.11", "3.12", "3.13")


def pyenv_bins() -> list[str]:
    """The bin directory of the newest installed patch of each wanted version, if pyenv is here."""
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        done = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)  # noqa: S607
        root = done.stdout.strip()
    versions = Path(root or Path.home() / ".pyenv") / "versions"
    if not versions.is_dir():
        return []
    newest: dict[str, tuple[int, Path]] = {}
    for entry in versions.iterdir():
        found = re.fullmatch(r"(3\.\d+)\.(\d+)", entry.name)
        if found and found[1] in WANTED and (entry / "bin").is_dir():
            patch = int(found[2])
            if found[1] not in newest or patch > newest[found[1]][0]:
                newest[found[1]] = (patch, entry / "bin")
    return [str(newest[v][1]) for v in WANTED if v in newest]


def _extend_path() -> None:
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(path + [b for b in pyenv_bins() if b not in path])


_extend_path()
