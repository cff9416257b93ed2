"""ClearChecks sandbox provider (see docs/providers/clearchecks.md for what is evidenced vs assumed)."""

from sandbox.clearchecks.provider import ClearChecksProvider

__all__ = ["ClearChecksProvider"]
