"""The breaker (interrupting unit 57): a relay on a GPIO pin through gpiozero, journaled."""
from .relay import BreakerJournal, RelayBreaker

__all__ = ["BreakerJournal", "RelayBreaker"]
