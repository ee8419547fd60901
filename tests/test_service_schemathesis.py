"""Property-based requests from the served OpenAPI spec: the server never answers 5xx and every
answer matches the spec. Runs against a started server (no job workers, so generated jobs only
queue)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance

from service_helpers import Server, create_key, demo_images, image_inputs

KEY: dict[str, str] = {}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("schemathesis")
    KEY["key"] = create_key(root / "data", "fuzz")
    server = Server(root / "data", root / "cache", TSNEGRID_SERVICE_WORKERS="0",
                    TSNEGRID_SERVICE_MAX_JOBS_PER_APP="1000").start()
    try:
        r = httpx.post(server.url + "/v2/inputs", timeout=60,
                       headers={"Authorization": f"Key {KEY['key']}"},
                       json={"inputs": image_inputs(demo_images(4))})
        assert r.status_code == 200
        yield server
    finally:
        server.stop()


def operations() -> list[str]:
    """Labels of the served operations (read from the app, so parametrising needs no server)."""
    from pathlib import Path

    from tsnegrid.service.app import create_app
    from tsnegrid.service.config import ServiceConfig

    spec = create_app(ServiceConfig(data_dir=Path("unused"))).openapi()
    return [f"{m.upper()} {p}" for p, item in spec["paths"].items() for m in item]


@pytest.fixture(scope="module")
def api_schema(served: Server) -> Any:
    return schemathesis.openapi.from_url(served.url + "/openapi.json", wait_for_schema=30)


@pytest.mark.parametrize("label", operations())
def test_no_server_errors(label: str, api_schema: Any, served: Server) -> None:
    op = api_schema.find_operation_by_label(label)
    auth = {"Authorization": f"Key {KEY['key']}"}

    @given(case=op.as_strategy())
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(base_url=served.url, headers={**(case.headers or {}), **auth},
                               timeout=30, checks=[not_a_server_error,
                                                   content_type_conformance])

    check()
