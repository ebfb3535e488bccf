"""Errors of the Open Floor side."""

from __future__ import annotations


class OfpError(Exception):
    """Base class of every error raised by ``convener.ofp``."""


class ParseError(OfpError, ValueError):
    """Inbound data cannot be understood as an Open Floor envelope (even after repairs)."""


class InvalidEnvelope(OfpError):
    """An envelope we were about to send fails the strict checks (a bug on our side)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
