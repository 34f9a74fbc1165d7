"""Network namespaces and veth pairs for tests (root only).

`NetnsLab` creates namespaces whose names are unique to this test run (``mch-<pid>-<random>-<role>``),
links them with veth pairs created directly inside them, assigns addresses only inside them, and
on exit stops the processes it started (by their pid) and deletes the namespaces, even when the test
failed. Namespaces left behind by a run that was killed outright are removed by the next run
(their name holds the pid of a process that is gone).

    with NetnsLab() as lab:
        gw, dev = lab.namespace("gw"), lab.namespace("dev")
        lab.veth(gw, "gw0", dev, "dev0")
        gw.ip("addr", "add", "192.168.77.1/24", "dev", "gw0")
        dev.ip("addr", "add", "192.168.77.2/24", "dev", "dev0")
        server = dev.popen("python3", "-m", "http.server", "8000")   # stopped by pid on exit
        gw.run("curl", "-s", "http://192.168.77.2:8000/")

`Namespace.call` runs a Python function in a thread that has joined the namespace: sockets it
opens (an asyncio loop with zeroconf, say) live there for good.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "mch"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_OURS = re.compile(rf"{PREFIX}-(\d+)-[0-9a-f]+-[a-z0-9]+")
T = TypeVar("T")


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass
class Namespace:
    name: str
    lab: NetnsLab = field(repr=False)

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace and wait for it; a failure raises with its stderr."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} in {self.name} failed: {done.stderr.strip()}")
        return done

    def ip(self, *args: str) -> str:
        """``ip -n NS ARGS``: the output, or an error naming the command."""
        done = subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)} in {self.name} failed: {done.stderr.strip()}")
        return done.stdout

    def popen(self, *cmd: str, **kwargs: Any) -> subprocess.Popen[str]:
        """Start a process in the namespace; the lab stops it (by pid) when it closes.

        ``ip netns exec`` execs the command, so the pid is the command's own.
        """
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], text=True, **kwargs)
        self.lab.processes.append(proc)
        return proc

    def call(self, function: Callable[[], T], timeout: float = 60) -> T:
        """``function()`` in a thread that joined this namespace; its result or its exception."""
        outcome: list[Any] = []

        def target() -> None:
            try:
                _enter(self.name)
                outcome.append((True, function()))
            except BaseException as exc:  # handed over to the caller's thread
                outcome.append((False, exc))

        thread = threading.Thread(target=target, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join(timeout)
        if not outcome:
            raise TimeoutError(f"function in {self.name} still running after {timeout} s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def mac(self, interface: str) -> str:
        """The MAC of ``interface`` (``ip -br link``: name, state, MAC, flags)."""
        return self.ip("-br", "link", "show", interface).split()[2]


def _enter(name: str) -> None:
    """Move the calling thread (only it) into namespace ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


class NetnsLab:
    """Namespaces, veth pairs and processes of one test, all removed on exit."""

    def __init__(self) -> None:
        self.run_id = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.namespaces: list[Namespace] = []
        self.processes: list[subprocess.Popen[str]] = []

    def __enter__(self) -> NetnsLab:
        remove_stale()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def namespace(self, role: str) -> Namespace:
        """A new namespace with loopback up and IPv6 duplicate address detection off (instant addresses)."""
        if not re.fullmatch(r"[a-z0-9]{1,8}", role):
            raise ValueError(f"role {role!r}: use 1 to 8 of a-z 0-9")
        ns = Namespace(f"{PREFIX}-{self.run_id}-{role}", self)
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True)
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        for scope in ("all", "default"):
            ns.run("sysctl", "-qw", f"net.ipv6.conf.{scope}.accept_dad=0")
        return ns

    def veth(self, a: Namespace, a_if: str, b: Namespace, b_if: str) -> None:
        """A veth pair created inside ``a`` with its peer inside ``b``; both ends up."""
        a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
        a.ip("link", "set", a_if, "up")
        b.ip("link", "set", b_if, "up")

    def close(self) -> None:
        """Stop our processes by pid (TERM, then KILL), then empty and delete our namespaces."""
        for proc in self.processes:
            _stop(proc)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            _remove_namespace(ns.name)
        self.namespaces.clear()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()


def remove_stale() -> None:
    """Delete namespaces of earlier runs of this helper whose process is gone."""
    if not NETNS_DIR.is_dir():
        return
    for path in NETNS_DIR.iterdir():
        match = _OURS.fullmatch(path.name)
        if match and not _alive(int(match[1])):
            _remove_namespace(path.name)


def _remove_namespace(name: str) -> None:
    """Kill what still runs in it (by pid, as `ip netns pids` lists them), then delete it."""
    done = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    for pid in done.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
