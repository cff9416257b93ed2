"""A TCP relay on a simulated host's own loopback to the sandbox on the services host.

The engine sends credentials only over https or to a sandbox on loopback
(integrations/engine/registry.py, `check_transport_security`), and the sandbox speaks plain http.
On a worker host (sandbox/netns.py) the sandbox is at the services address, not on loopback, so
each host runs this relay, as a TLS sidecar would: `127.0.0.1:PORT` inside the host forwards, over
the host's veth link, to `TARGET:PORT`. Connections store `http://127.0.0.1:PORT` and work on every
host. A real provider is https and needs none of this.

    ip netns exec ssw1 python -m sandbox.loopback_relay --to 10.231.0.1 --ports 8701 8703
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

READY = "relay ready"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def serve(target: str, ports: list[int], listen: str = "127.0.0.1") -> None:
    def handler(port: int):  # type: ignore[no-untyped-def]
        async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            try:
                server_r, server_w = await asyncio.open_connection(target, port)
            except OSError:
                client_w.close()
                return
            await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))

        return relay

    servers = [await asyncio.start_server(handler(p), listen, p, backlog=1024) for p in ports]
    print(f"{READY}: {listen}:{ports} -> {target}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="relay loopback ports to the sandbox on the services host")
    parser.add_argument("--to", required=True, help="the services host's address")
    parser.add_argument("--ports", required=True, nargs="+", type=int)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.to, args.ports))


if __name__ == "__main__":
    main()
