"""Errors the harness raises on purpose, each with a message a user can act on."""


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what is expected."""


class DataError(RuntimeError):
    """A dataset root, file or resolution is missing, corrupt or unsupported."""


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be found or fetched; the message says which file and how to provide it."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
