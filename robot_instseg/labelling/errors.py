"""Errors of the labelling round trip, each with a reason code the CLI and tests can tell apart."""

from __future__ import annotations


class LabellingError(ValueError):
    """A labelling step that cannot go on; ``reason`` is one of REASONS."""

    REASONS = ("unreachable", "auth", "refused", "dataset", "duplicate", "format")

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
