"""User-fixable errors. The CLI prints them as one clear line naming the problem, no traceback."""


class MeterError(Exception):
    """Base of every error a user, installer or integrator can fix from its message alone."""


class ConfigError(MeterError):
    """A config file problem; the message names the key and what is wrong with it."""


class ChangeRejected(MeterError):
    """Contract change data that is not stored: malformed, unknown data type, past switch time, ..."""
