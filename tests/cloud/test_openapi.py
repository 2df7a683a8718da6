"""The manager API against its own OpenAPI description, with Schemathesis: generated requests, signed in
as an operator and anonymous, never get a 500 and never an answer that breaks the description; and
every route the API answers is in the description."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from receivers import ApiRig

from cloud.outage.openapi import document

schema = schemathesis.openapi.from_dict(document())
# "not a server error" and "the answer matches the description"; status codes outside it fail too
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance,
          schemathesis.checks.status_code_conformance]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    rig = ApiRig(tmp_path_factory.mktemp("openapi") / "outage.db")
    yield rig
    rig.close()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_as_an_operator(api, case):
    case.call_and_validate(base_url=f"http://{api.host}:{api.port}", headers=api.operator, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_anonymously(api, case):
    response = case.call_and_validate(base_url=f"http://{api.host}:{api.port}", checks=CHECKS)
    if case.path not in ("/unsubscribe", "/openapi.json"):
        assert response.status_code in (401, 405, 429)  # never an answer to an anonymous caller


def test_the_description_is_served_and_names_every_route(api):
    status, served = api.call("GET", "/openapi.json", headers={})
    assert status == 200 and served == document()
    import inspect

    from cloud.outage.api import OutageApi

    source = inspect.getsource(OutageApi.route)
    for path in ("da", "outages", "planned", "registrations", "security_errors", "areas", "meters", "unsubscribe",
                 "openapi.json"):
        assert f'"{path}"' in source and any(p.strip("/").split("/")[0] == path for p in served["paths"]), path
