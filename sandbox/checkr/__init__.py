"""The Checkr sandbox provider: `CheckrProvider` (production and staging share the code)."""

from sandbox.checkr.provider import CheckrProvider

__all__ = ["CheckrProvider"]
