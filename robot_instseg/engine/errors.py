"""Errors the engine raises, so callers can tell a bad frame from a bad model."""


class EngineError(Exception):
    """Base of every error raised by robot_instseg.engine."""


class InputError(EngineError, ValueError):
    """An image the engine refuses (dtype, shape, size); the message says what was wrong."""


class ModelError(EngineError):
    """A model that cannot be used: missing, not a model, or outputs no decoder understands."""
