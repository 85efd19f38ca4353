"""Debian's Kamailio as a stateful proxy with a KEMI Python script, for the tests and the benchmark.

Kamailio runs in the foreground as the current user (`-DD -E`), on 127.0.0.1 only, with its
own runtime directory and ctl socket in a temporary directory; its embedded Python is
Debian's `/usr/bin/python3`, which finds sip_statsd and its dependencies through PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datadog
import statsd

import sip_statsd

ASSETS = Path(__file__).parent / "kamailio"
SYSTEM_PYTHON = "/usr/bin/python3"


def module_dir() -> str | None:
    """Where Debian keeps Kamailio's modules (app_python3.so among them), or None."""
    for path in sorted(glob.glob("/usr/lib/*/kamailio/modules")):
        if os.path.exists(os.path.join(path, "app_python3.so")):
            return path
    return None


def require_kamailio_or_skip() -> str | None:
    """None when this Python can run the test; else the reason to skip (never in CI on 3.11)."""
    missing = [tool for tool in ("kamailio", "kamcmd", "sipp") if shutil.which(tool) is None]
    if module_dir() is None:
        missing.append("app_python3.so")
    if missing:
        reason = f"{', '.join(missing)} missing (apt-get install kamailio kamailio-python3-modules sip-tester)"
        if os.environ.get("CI") and sys.version_info[:2] == (3, 11):
            raise RuntimeError(reason)
        return reason
    embedded = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if embedded != [str(sys.version_info[0]), str(sys.version_info[1])]:
        return (
            f"Kamailio embeds Python {'.'.join(embedded)} and this test runs on "
            f"{sys.version_info[0]}.{sys.version_info[1]}: it runs on the matching Python only"
        )
    return None


# The shared sender: rtimer runs the integration's KEMI function every second, in a process of
# its own (modules, then "--", then parameters, as `Kamailio(extra=...)` takes them).
RTIMER = (
    'loadmodule "rtimer.so"\n--\n'
    'modparam("rtimer", "timer", "name=metrics;interval=1;mode=1;")\n'
    'modparam("rtimer", "exec", "timer=metrics;route=ksr_metrics_timer")'
)


def python_path() -> str:
    """sip_statsd and its dependencies (pure Python) for Kamailio's embedded interpreter."""
    dirs = []
    for module in (sip_statsd, datadog, statsd):
        assert module.__file__ is not None
        path = Path(module.__file__).parent
        dirs.append(str(path.parent if path.name == module.__name__ else path))
    return os.pathsep.join(dict.fromkeys(dirs))


class Kamailio:
    """One Kamailio process tree, started with `kemi.py` and stopped with SIGTERM."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        env: dict[str, str],
        children: int = 4,
        extra: str = "",
        recipe: tuple[str, str] | None = None,
    ) -> None:
        """`recipe`: (kamailio.cfg, kemi.py) texts instead of tests/kamailio's, their @MARK@s filled the same way."""
        self.workdir = workdir
        self.ctl = workdir / "ctl.sock"
        script = workdir / "kemi.py"
        if recipe is None:
            shutil.copy(ASSETS / "kemi.py", script)
            config = (ASSETS / "kamailio.cfg").read_text()
        else:
            config, text = recipe
            script.write_text(text)
        modules, _, params = extra.partition("\n--\n")
        marks = {
            "CHILDREN": str(children),
            "PORT": str(port),
            "MPATH": f"{module_dir()}/",
            "CTL": str(self.ctl),
            "SCRIPT": str(script),
            "EXTRA_MODULES": modules,
            "EXTRA_PARAMS": params,
        }
        for mark, value in marks.items():
            config = config.replace(f"@{mark}@", value)
        assert not re.search("@[A-Z_]+@", config)
        (workdir / "kamailio.cfg").write_text(config)
        self._log = (workdir / "kamailio.log").open("w+")
        command = ["kamailio", "-DD", "-E", "-f", str(workdir / "kamailio.cfg"), "-Y", str(workdir)]
        command += ["-P", str(workdir / "kamailio.pid")]
        self.process = subprocess.Popen(
            command,
            cwd=workdir,
            env={**env, "PYTHONPATH": python_path()},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a child that outlives the main one is ended too
        )
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float = 20.0) -> None:
        """Until the ctl socket answers (every process has forked and run child_init)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kamailio exited {self.process.returncode}: {self.log()}")
            if self.ctl.exists() and self.rpc("core.uptime", check=False).returncode == 0:
                return
            time.sleep(0.05)  # a process we wait for, not a thread: it gives no event to wait on
        self.stop()
        raise RuntimeError(f"kamailio did not answer on {self.ctl}: {self.log()}")

    def rpc(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kamcmd", "-s", f"unix:{self.ctl}", *command], capture_output=True, text=True, timeout=10, check=check
        )

    def statistics(self) -> dict[str, int]:
        """`kamcmd stats.get_statistics all`: `tmx:2xx_transactions` → n."""
        out = self.rpc("stats.get_statistics", "all").stdout
        return {k.strip(): int(v) for k, v in re.findall(r"^\s*([\w:.-]+)\s*=\s*(-?\d+)\s*$", out, re.M)}

    def pids(self) -> list[int]:
        """Every process of the tree (`core.psx`)."""
        return list(self.processes())

    def processes(self) -> dict[int, str]:
        """Every process of the tree and what Kamailio says it is (`core.psx`: "udp receiver child=0 ...")."""
        found = re.findall(r"PID:\s*(\d+)\s*DSC:\s*([^\n]*)", self.rpc("core.psx").stdout)
        return {int(pid): what.strip() for pid, what in found}

    def stop(self, timeout: float = 10.0) -> float | None:
        """SIGTERM; the seconds it took the main process to exit, or None if it had to be killed."""
        if self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        fd = os.pidfd_open(self.process.pid)
        try:
            ended, _, _ = select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        took = time.monotonic() - started
        if not ended:
            self.process.kill()
        self.process.wait(5)
        self._log.flush()
        return took if ended else None

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-6000:]

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever of its tree is left
        self._log.close()
