"""Run any ASGI app on a free loopback port for a test (the product's own thread runner)."""

from common.asgi_thread import free_port, serve_in_thread

serve_asgi = serve_in_thread

__all__ = ["free_port", "serve_asgi"]
