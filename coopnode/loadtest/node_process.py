"""Run a real node (Ray, LMDB, HTTP) in a child process, as an operator would.

Used by the benchmarks and the capacity harness, which drive a node they start
themselves, and by the test suite.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

import msgspec

from coopnode.domain.staff import Permission
from coopnode.settings import Settings

# Starting Ray and the shards takes seconds; two minutes means the start is broken.
START_TIMEOUT_S = 120.0
# Where Linux keeps the nice value of a session's scheduling group (autogroup).
AUTOGROUP_PATH = Path("/proc/self/autogroup")
# The harness's administrator and machine token, made by the bootstrap at a first start.
HARNESS_ADMINISTRATOR = "harness"
HARNESS_TOKEN_NAME = "harness"  # noqa: S105  # A token's name, not a token.
# The file beside the staff token that keeps the harness's machine token.
MACHINE_TOKEN_FILE = "api-token"  # noqa: S105  # A file's name, not a token.
# Nice values run from 0 (the default) to 19 (the lowest priority); lowering is all a
# process may do to itself without privileges.
NICENESS_MAX = 19


def lower_priority(niceness: int) -> None:
    """Lower the calling process's CPU priority by `niceness`, and its session's with it.

    Run in the node's child between fork and exec, so that everything the node starts
    (Ray's GCS, raylet and workers) inherits it. A nice value ranks a process only against
    others in its scheduling group, and with Linux's autogroup on
    (/proc/sys/kernel/sched_autogroup_enabled) every session is a group of its own: the
    node, started in a new session, would weigh as much as the load generator's session
    whatever its processes' nice values. The session's group is therefore niced too; a
    kernel without autogroup has no such file, and the process's nice value then suffices.
    """
    if not 0 <= niceness <= NICENESS_MAX:
        raise ValueError(f"niceness must be 0 to {NICENESS_MAX}, not {niceness}")
    os.nice(niceness)
    with contextlib.suppress(OSError):
        AUTOGROUP_PATH.write_text(str(niceness))


def session_priority(pid: int) -> str:
    """The nice values of a process and of its session's group, as `ps` and /proc say them."""
    nice = os.getpriority(os.PRIO_PROCESS, pid)
    try:
        group = Path(f"/proc/{pid}/autogroup").read_text().split()[-1]
    except (OSError, IndexError):
        return f"nice {nice}"
    return f"nice {nice}, session group nice {group}"


def short_tmpdir(prefix: str = "cn") -> Path:
    """A short directory: Ray's Unix sockets live under it and paths are limited to 107 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class NodeDidNotStop(RuntimeError):
    """A node sent Ctrl-C did not exit within the patience given."""


class NodeProcess:
    """`coopnode serve` in its own process group, on a data directory that outlives it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        config: Path | None = None,
        demo: bool = False,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        port: int = 0,
        niceness: int = 0,
        staff_token_file: Path | None = None,
        machine_token: bool = True,
    ) -> None:
        self.data_dir = data_dir
        # Above 0 the node's process tree runs at a lower CPU priority (`lower_priority`).
        self.niceness = niceness
        # 0 takes any free port; a fixed one lets a restarted node keep its URL for clients.
        self.port = port
        self.config = config
        self.cwd = cwd
        self.demo = demo
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        # The machine token (scoped API token) every request of the harness and the suite
        # sends; `staff_token` is the node's staff token, whose one use is the bootstrap.
        self.token = ""
        self.staff_token = ""
        self.log_path = data_dir / "node.log"
        # Where the node keeps the staff token (`node.staff_token_file`; a cluster's fronts
        # share one): by default in the data directory.
        self.staff_token_file = staff_token_file or data_dir / "staff-token"
        # Where the machine token made at the bootstrap is kept, beside the staff token
        # (so a cluster's fronts share it too), readable by the owner only.
        self.machine_token_file = self.staff_token_file.with_name(MACHINE_TOKEN_FILE)
        # False: no bootstrap at start (a test of the bootstrap itself); `token` stays "".
        self.machine_token = machine_token
        # How `request` verifies a node that serves HTTPS (`node.tls_cert_file`).
        self.ssl_context: ssl.SSLContext | None = None

    def _command(self, subcommand: str) -> list[str]:
        """`coopnode [--config FILE] SUBCOMMAND` with this node's flags."""
        command = [sys.executable, "-m", "coopnode.node.cli"]
        if self.config is not None:
            command += ["--config", str(self.config)]
        return [*command, subcommand, "--data-dir", str(self.data_dir), "--port", str(self.port)]

    def _environment(self) -> dict[str, str]:
        """The node's environment: this process's, with the node's own settings laid over."""
        return {**os.environ, "COOPNODE_LOG__FORMAT": "json", **self.env}

    def effective_settings(self) -> Settings:
        """The settings this node runs with, as the node itself resolves them.

        `coopnode settings` with the node's command line, working directory and environment
        (so also a `COOPNODE_...` variable of the shell that started the benchmark): what a
        benchmark prints about the node is read here, never assumed from the defaults.
        """
        command = self._command("settings")
        result = subprocess.run(
            command, cwd=self.cwd, env=self._environment(), capture_output=True, check=False
        )
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace")
            raise RuntimeError(f"coopnode settings failed: {error}")
        return msgspec.json.decode(result.stdout, type=Settings)

    def start(self) -> Self:
        url_file = self.data_dir / "node.url"
        url_file.unlink(missing_ok=True)
        command = self._command("serve")
        if self.demo:
            command.append("--demo")
        env = self._environment()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # setsid() runs in the child before preexec_fn, so the niced group is the node's own.
        preexec = functools.partial(lower_priority, self.niceness) if self.niceness else None
        self.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=preexec,
        )
        try:
            self._wait_started(url_file)
        except BaseException:
            # A start that failed half way leaves no node behind it (nor its Ray).
            self.process.kill()
            self.process.wait(timeout=30)
            self._reap_group()
            raise
        return self

    def _wait_started(self, url_file: Path) -> None:
        if self.process is None:
            raise RuntimeError("the node was not started")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not url_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        self.url = url_file.read_text().strip()
        self.staff_token = self.staff_token_file.read_text().strip()
        self.token = self._machine_token() if self.machine_token else ""

    def _machine_token(self) -> str:
        """The harness's API token: read from its file, or made at the node's first start
        by the bootstrap (the staff token's one use), with an administrator the harness
        never signs in as and a token granted every permission the harness uses."""
        if self.machine_token_file.exists():
            return self.machine_token_file.read_text().strip()
        body = {
            "staff_id": HARNESS_ADMINISTRATOR,
            "name": "Load harness administrator",
            "password": secrets.token_urlsafe(24) + "aA1!",
            "token_name": HARNESS_TOKEN_NAME,
            "token_scopes": sorted(permission.value for permission in Permission),
        }
        status, answer = self.request("POST", "/api/v1/staff/bootstrap", body, self.staff_token)
        if status != 201 or not isinstance(answer, dict) or not answer.get("token"):
            raise RuntimeError(
                f"the bootstrap answered {status} {answer!r}, and {self.machine_token_file} "
                "does not hold the harness's token: give the node a fresh data directory"
            )
        token = str(answer["token"]["token"])
        self.machine_token_file.touch(mode=0o600)
        self.machine_token_file.write_text(token + "\n")
        return token

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the node is not running")
        return self.process.pid

    def kill9(self) -> None:
        """Kill the node process itself with SIGKILL, as a power cut or the OOM killer would."""
        os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
        self._reap_group()

    def stop(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, then wait for a clean exit."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # What the node was doing when it did not stop is in its log, which the
            # caller's cleanup may remove: say it here.
            raise NodeDidNotStop(
                f"the node did not stop within {timeout_s:.0f} s of Ctrl-C:\n{self.log_tail()}"
            ) from None
        finally:
            self._reap_group()
        return code

    def _reap_group(self) -> None:
        """Ray's helper processes outlive a killed driver for a while: end them."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        # Shard actors run in process groups of their own; they die with their raylet.
        time.sleep(0.2)

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """A blocking JSON request, for fixtures and simple checks."""
        if not self.url.startswith(("http://", "https://")):
            raise RuntimeError(f"the node's URL is {self.url!r}, not an http(s):// URL")
        data = None if body is None else json.dumps(body).encode()
        # The URL is the node's own http(s):// address, checked above.
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {self.token if token is None else token}")
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=30, context=self.ssl_context
            ) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, raw.decode(errors="replace")


def durability(settings: Settings) -> str:
    """How a node's commits reach the disk, for a benchmark's summary line."""
    return "fsync on" if settings.wallet.fsync else "fsync off (commits not flushed)"


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
