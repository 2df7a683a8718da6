"""Times at the storage boundary: the one set of helpers lives in :mod:`appliance.clock`."""
from appliance.clock import from_epoch, to_epoch

__all__ = ["from_epoch", "to_epoch"]
