"""User-fixable errors. The CLI prints them as one clear line naming the problem, no traceback."""


class MeterError(Exception):
    """Base of every error a user, installer or integrator can fix from its message alone."""


class ConfigError(MeterError):
    """A config file problem; the message names the key and what is wrong with it."""


class ChangeRejected(MeterError):
    """Contract change data that is not stored: malformed, unknown data type, past switch time, ...

    ``code`` names the check that refused it, stable for displays that word it for a household."""

    code = "rejected"

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code
