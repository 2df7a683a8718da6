"""The supply monitor: a "power good" GPIO input for the last gasp (appliance.supply)."""
from .monitor import GpioSupplyMonitor

__all__ = ["GpioSupplyMonitor"]
