"""`SandboxError`: a request the sandbox refuses, with the HTTP status to answer it with."""

from __future__ import annotations


class SandboxError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
