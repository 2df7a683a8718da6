"""MQTT topic names (interfaces.md section 2). Fixed contracts: never rename."""


def interval(meter_id: str) -> str:
    return f"meters/{meter_id}/interval"


def status(meter_id: str) -> str:
    return f"meters/{meter_id}/status"


def alerts(meter_id: str) -> str:
    """The household's alerts the grid operator passes on to the customer (a security error)."""
    return f"meters/{meter_id}/alerts"


def commands(meter_id: str) -> str:
    return f"meters/{meter_id}/commands"


def company_data(company_code: str, meter_id: str) -> str:
    return f"companies/{company_code}/meters/{meter_id}/data"


def company_events(company_code: str, meter_id: str) -> str:
    return f"companies/{company_code}/meters/{meter_id}/events"


def contracts(meter_id: str) -> str:
    """The meter's contracts in force and pending, for the customer's page (embodiment 3)."""
    return f"meters/{meter_id}/contracts"


def retained(topic: str) -> bool:
    """A state topic: the broker keeps the last one for a receiver that subscribes later."""
    return topic.startswith("meters/") and topic.endswith("/contracts")
