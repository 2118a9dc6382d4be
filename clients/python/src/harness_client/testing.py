"""A real ``harness serve`` for tests: started on a free loopback port with the whitelist you
give, stopped when the ``with`` block ends. The ``harness`` binary is ``$HARNESS_BIN``, or
``harness`` on the ``PATH``.

>>> with HarnessServer("harness.toml") as server:  # doctest: +SKIP
...     client = Client(server.url, key="hk_…")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx


def harness_binary() -> str:
    """The ``harness`` binary to run: ``$HARNESS_BIN``, or the one on the ``PATH``."""
    found = os.environ.get("HARNESS_BIN") or shutil.which("harness")
    if not found:
        raise FileNotFoundError(
            "no harness binary: set HARNESS_BIN (e.g. target/debug/harness) or put it on PATH"
        )
    return found


def build_tool(folder: str | Path, out: str | Path, target_dir: str | Path | None = None) -> Path:
    """Builds the tool in ``folder`` to the component ``out`` with ``harness build``."""
    command = [harness_binary(), "build", str(folder), "-o", str(out)]
    if target_dir is not None:
        command += ["--target-dir", str(target_dir)]
    subprocess.run(command, check=True, capture_output=True)
    return Path(out)


class HarnessServer:
    """``harness serve --policy POLICY`` on a free loopback port, ready when entered."""

    def __init__(self, policy: str | Path, *, ready_within: float = 30.0) -> None:
        self.policy = Path(policy)
        self.ready_within = ready_within
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HarnessServer:
        self.log = self.policy.with_suffix(".serve.log")
        log = open(self.log, "wb")
        # Port 0: the kernel picks a free port, and the server says which on its first line.
        self.process = subprocess.Popen(
            [harness_binary(), "serve", "--policy", str(self.policy), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().decode(errors="replace").strip()
        log.close()  # the server has its own handle
        if not first.startswith("listening on "):
            self.process.wait(timeout=self.ready_within)
            raise self._exited()
        self.url = first.removeprefix("listening on ")
        deadline = time.monotonic() + self.ready_within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._exited()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.__exit__()
        raise TimeoutError(f"harness serve was not ready within {self.ready_within} s")

    def _exited(self) -> RuntimeError:
        assert self.process is not None
        return RuntimeError(
            f"harness serve exited with {self.process.returncode}: "
            + self.log.read_text(errors="replace")
        )

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
