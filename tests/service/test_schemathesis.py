"""Property-based API test: Schemathesis generates requests from the OpenAPI schema (valid and
invalid ones) against the real app on a SQLite file, with auth on (Schemathesis also checks that
requests without or with a bad token are refused); no response may be a 5xx or break the schema.
The number of examples per operation is bounded so that CI stays fast.

One check is left out: ``positive_data_acceptance`` expects every schema-valid request to succeed,
but a schema cannot say that a task must exist or that a page token must be one we issued; such
requests rightly get a 404 or 422 problem, which the other checks still validate."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from service.app import create_app
from service.auth import issue_token
from service.settings import Settings

_DATA_DIR = Path(tempfile.mkdtemp(prefix="supernas-schemathesis-"))
_APP = create_app(Settings(data_dir=_DATA_DIR, run_dispatcher=False, max_upload_bytes=64 * 1024, auth=True))
_APP.state.storage.upgrade()  # what the lifespan does first; Schemathesis calls the ASGI app directly
_, _TOKEN = issue_token(_APP.state.storage, "schemathesis", "property-based API test")
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@schema.auth()
class _BearerToken:
    """Schemathesis's own auth hook, so that its negative tests of auth still see bad tokens."""

    def get(self, case: schemathesis.Case, context: object) -> str:
        return _TOKEN

    def set(self, case: schemathesis.Case, data: str, context: object) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_keeps_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
