"""The RFC 9457 problem detail of an error response, checked for the service tests."""

from __future__ import annotations

from typing import Any

import httpx


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of ``response``, asserting its status code, media type and ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    return body
