"""The grid operator's outage pipeline (JP6794864B2).

collector (data collection device 17) -> manager (outage information management device 25)
-> notifier (public server 27), sharing one :mod:`cloud.outage.storage` database.
"""
