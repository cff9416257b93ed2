"""Check that a worker host is the separate machine it plays: only its veth link, its own loopback."""

from __future__ import annotations

import sys

from pydantic import BaseModel

from sandbox.netns import Host, SimulatedHosts


class IsolationError(RuntimeError):
    """A worker host can see more (or less) of the network than intended: the run would prove nothing."""


class Isolation(BaseModel):
    """What one worker host sees of the network."""

    host: str
    interfaces: list[str]
    routes: list[str]
    services_reachable: bool  # PostgreSQL on the services address, over the veth link
    root_loopback_reachable: bool  # PostgreSQL on 127.0.0.1: must be False (the host's loopback is its own)


_PROBE = """
import socket, sys
def can(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        return True
    except OSError:
        return False
print(int(can(sys.argv[1], sys.argv[2])), int(can("127.0.0.1", sys.argv[2])))
"""


def check_isolation(hosts: SimulatedHosts, host: Host, port: int) -> Isolation:
    """`port` listens on both the services address and the root's loopback (PostgreSQL does): from the
    host the first must answer and the second must not. Raises IsolationError when anything is off."""
    probe = hosts.run(host, sys.executable, "-c", _PROBE, hosts.services_address, str(port))
    reach = probe.stdout.split()
    found = Isolation(
        host=host.name,
        interfaces=hosts.interfaces(host),
        routes=hosts.routes(host),
        services_reachable=reach[:1] == ["1"],
        root_loopback_reachable=reach[1:2] == ["1"],
    )
    wrong = []
    if sorted(found.interfaces) != ["eth0", "lo"]:
        wrong.append(f"interfaces {found.interfaces}")
    if not found.routes or any("default" in r or "dev eth0" not in r for r in found.routes):
        wrong.append(f"routes {found.routes}")
    if not found.services_reachable or found.root_loopback_reachable:
        wrong.append(f"reachability {reach or probe.stderr.strip()}")
    if wrong:
        raise IsolationError(f"host {host.name} is not isolated as intended: {'; '.join(wrong)}")
    return found
