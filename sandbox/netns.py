"""Simulated hosts: Linux network namespaces linked to the root namespace by veth pairs (needs root + `ip`).

Each host `<prefix>K` has its own network stack: its own loopback (127.0.0.1 in a host is not the
root's), one interface `eth0` (the namespace end of a veth pair) with the address `.10+K` of a
private subnet, and one route: that subnet. No default route, so it reaches the services host
(the root namespace, address `.1` on the bridge `<prefix>br0` that every veth's root end joins) and
the other hosts, nothing else. Processes started with `exec_prefix(host)` run on that host; they
still share the machine's file system (what the embedded warehouse file relies on) and kernel.

`stop()` kills every process left in each namespace, deletes the namespaces and the bridge; it is
idempotent and `start()` first removes leftovers of the same prefix (an earlier run killed hard).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from types import TracebackType

FIRST_HOST = 10  # host K gets the subnet's address .10+K


class NetnsUnavailable(RuntimeError):
    """This machine cannot create network namespaces here (not root, no `ip`, or the kernel refuses)."""


@dataclass(frozen=True)
class Host:
    """One simulated host: its namespace and its address on the link to the services host."""

    name: str
    address: str
    veth: str  # the root namespace's end of its veth pair


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can (root and `ip` present)."""
    if os.geteuid() != 0:
        return "network namespaces need root (`ip netns add` as root)"
    if shutil.which("ip") is None:
        return "the `ip` command is missing: `apt-get install iproute2`"
    return None


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


class SimulatedHosts:
    """`count` namespaces `<prefix>1..<prefix>count` on `subnet` (a /24 or larger, private)."""

    def __init__(self, count: int, *, prefix: str = "ssw", subnet: str = "10.231.0.0/24") -> None:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        if not prefix.isalnum() or len(prefix) > 8:
            raise ValueError(f"prefix must be 1-8 letters/digits (interface names are short), got {prefix!r}")
        net = ipaddress.ip_network(subnet)
        if not net.is_private or net.num_addresses < FIRST_HOST + count + 2:
            raise ValueError(f"subnet {subnet} must be private with room for {count} hosts from .{FIRST_HOST + 1}")
        self.prefix = prefix
        self.network = net
        self.bridge = f"{prefix}br0"
        self.services_address = str(net.network_address + 1)
        self.hosts = [
            Host(f"{prefix}{k}", str(net.network_address + FIRST_HOST + k), f"{prefix}{k}h") for k in range(1, count + 1)
        ]

    @property
    def subnet(self) -> str:
        return str(self.network)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SimulatedHosts:
        reason = unavailable_reason()
        if reason:
            raise NetnsUnavailable(reason)
        self._remove_leftovers()
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.services_address}/{self.network.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for host in self.hosts:
                _ip("netns", "add", host.name)
                _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.name)
                _ip("link", "set", host.veth, "master", self.bridge)
                _ip("link", "set", host.veth, "up")
                _ip("-n", host.name, "addr", "add", f"{host.address}/{self.network.prefixlen}", "dev", "eth0")
                _ip("-n", host.name, "link", "set", "eth0", "up")
                _ip("-n", host.name, "link", "set", "lo", "up")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill what still runs on each host, delete the namespaces (their veth ends go too) and the bridge."""
        for host in self.hosts:
            self.kill(host)
            _ip("netns", "del", host.name, check=False)
        _ip("link", "del", self.bridge, check=False)

    def _remove_leftovers(self) -> None:
        mine = {h.name for h in self.hosts}
        existing = {line.split()[0] for line in _ip("netns", "list", check=False).splitlines() if line.strip()}
        stale = {n for n in existing if n.startswith(self.prefix) and n[len(self.prefix):].isdigit()} | (mine & existing)
        for name in sorted(stale):
            self._kill_pids(self._pids(name))
            _ip("netns", "del", name, check=False)
        if _ip("link", "show", self.bridge, check=False):
            _ip("link", "del", self.bridge, check=False)

    def __enter__(self) -> SimulatedHosts:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- running things on a host ----------------------------------------------------------
    @staticmethod
    def exec_prefix(host: Host) -> list[str]:
        """Prepend to a command to run it on `host` (`ip netns exec` execs it: the pid is the command's)."""
        return ["ip", "netns", "exec", host.name]

    def run(self, host: Host, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.exec_prefix(host), *cmd], capture_output=True, text=True, timeout=timeout)

    def routes(self, host: Host) -> list[str]:
        """The host's routing table, one route a line (`ip route`)."""
        return [line.strip() for line in _ip("-n", host.name, "route").splitlines() if line.strip()]

    def interfaces(self, host: Host) -> list[str]:
        """Interface names in the host's namespace."""
        out = _ip("-n", host.name, "-o", "link", "show")
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()]

    @staticmethod
    def _pids(name: str) -> list[int]:
        return [int(p) for p in _ip("netns", "pids", name, check=False).split() if p.isdigit()]

    def pids(self, host: Host) -> list[int]:
        """Every process whose network namespace is this host's."""
        return self._pids(host.name)

    def kill(self, host: Host) -> list[int]:
        """The host dies: SIGKILL every process in its namespace at once; returns their pids."""
        return self._kill_pids(self.pids(host))

    @staticmethod
    def _kill_pids(pids: list[int]) -> list[int]:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
        return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False
