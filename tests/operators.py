"""The outage manager's operators and link-signing key, as the cloud tests set them up."""
from __future__ import annotations

TEST_KEY = b"test-link-signing-key-0123456789abcdef"  # 38 bytes: a Sender needs at least 32
OPERATOR, VIEWER = ("ops", "operator-password-1"), ("watch", "viewer-password-12")


def operator_accounts(folder):
    """An accounts file with an operator and a viewer; their Authorization headers."""
    from cloud.accounts import Accounts
    from cloud.outage.api_auth import basic_header

    accounts = Accounts(folder / "operators.json")
    accounts.add(OPERATOR[0], "operator", OPERATOR[1])
    accounts.add(VIEWER[0], "viewer", VIEWER[1])
    return accounts, {"Authorization": basic_header(*OPERATOR)}, {"Authorization": basic_header(*VIEWER)}
