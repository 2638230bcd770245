"""Errors the engine raises, so callers can tell a bad frame from a bad model."""


class EngineError(Exception):
    """Base of every error raised by robot_instseg.engine."""


class InputError(EngineError, ValueError):
    """An image the engine refuses (dtype, shape, size); the message says what was wrong.

    ``reason`` is a short counter name (encoding, step, data_size, empty, compressed, image)
    under which the node counts such frames in its diagnostics.
    """

    def __init__(self, message: str, reason: str = "image") -> None:
        super().__init__(message)
        self.reason = reason


class ModelError(EngineError):
    """A model that cannot be used: missing, not a model, or outputs no decoder understands."""
