"""The meter core: domain, schedule, store and uplink, free of hardware and UI libraries.

The patent's Fig. 8 loop lives here, one step per module:
S801/S802 in :mod:`appliance.intake`, S803/S804 in :mod:`appliance.switching`,
S805/S806 in :mod:`appliance.sending` and S807/S808 in :mod:`appliance.measure`.
"""
