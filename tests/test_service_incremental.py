"""Incremental visualizations over the HTTP API (TestClient, in-process worker), on SQLite and
PostgreSQL: old inputs keep their cells, new ones get cells of their own, deleted ones leave,
and every refused request says which field or object is at fault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import emoji_subset
from service_helpers import create_key, db_url, image_inputs, sqlite_only
from tsnegrid.service.app import create_app
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.worker import Worker

__all__ = ["db_url"]  # fixture used by name

BASE = {"model": "pixels", "reducer": "pca", "tile": 8}
N_OLD, N_NEW = 40, 4


@pytest.fixture
def config(tmp_path: Path, db_url: str | None) -> ServiceConfig:
    return ServiceConfig(data_dir=tmp_path / "data", db=db_url, workers=0,
                         cache_dir=tmp_path / "cache", max_jobs_per_app=3, url_allow=[])


@pytest.fixture
def api(config: ServiceConfig) -> Iterator[tuple[TestClient, dict[str, str]]]:
    key = create_key(config.data_dir, "app", config.db)
    with TestClient(create_app(config)) as client:
        yield client, {"Authorization": f"Key {key}"}


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return emoji_subset(tmp_path / "emoji", N_OLD + N_NEW)


def upload(api: Any, files: list[Path]) -> None:
    client, auth = api
    for i in range(0, len(files), 32):
        r = client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files[i:i + 32])})
        assert r.status_code == 200, r.text


def visualize(api: Any, config: ServiceConfig, **body: Any) -> dict[str, Any]:
    """POST a visualization, run it, return its finished output."""
    client, auth = api
    r = client.post("/v2/visualizations", headers=auth, json=body)
    assert r.status_code == 200, r.text
    Worker(config).drain()
    out = client.get(f"/v2/visualizations/{r.json()['output']['id']}", headers=auth)
    return dict(out.json()["output"])


def cells(api: Any, viz_id: str) -> tuple[dict[str, tuple[int, int]], dict[str, Any]]:
    client, auth = api
    doc = client.get(f"/v2/visualizations/{viz_id}/layout", headers=auth).json()
    return {r["input_id"]: (r["row"], r["col"]) for r in doc["images"]}, doc


def assert_error(r: Any, http: int, words: str) -> None:
    assert r.status_code == http, r.text
    assert words.lower() in r.json()["status"]["description"].lower(), r.json()


@pytest.fixture
def base(api: Any, config: ServiceConfig, files: list[Path]) -> dict[str, Any]:
    """A finished visualization of the first N_OLD inputs; the other N_NEW uploaded after."""
    upload(api, files[:N_OLD])
    out = visualize(api, config, **BASE)
    assert out["status"]["code"] == "DONE", out["status"]
    upload(api, files[N_OLD:])
    return out


def test_incremental_keeps_old_cells_and_places_new_inputs(api: Any, config: ServiceConfig,
                                                           files: list[Path],
                                                           base: dict[str, Any]) -> None:
    client, auth = api
    before, _ = cells(api, base["id"])
    out = visualize(api, config, incremental=True)
    assert out["status"]["code"] == "DONE", out["status"]
    assert out["input_count"] == N_OLD + N_NEW
    assert out["params"]["incremental"] is True and out["params"]["base"] == base["id"]
    assert out["params"]["tile"] == 8  # taken from the base
    after, doc = cells(api, out["id"])
    new_ids = {f.stem for f in files[N_OLD:]}
    assert set(after) == set(before) | new_ids
    assert len(set(after.values())) == len(after), "two inputs share a cell"
    kept = sum(after[i] == cell for i, cell in before.items())
    assert kept >= 0.95 * len(before), f"only {kept} of {len(before)} old inputs kept their cell"
    summary = doc["incremental"]
    assert summary == {"base": base["id"], "added": N_NEW, "moved": len(before) - kept,
                       "rows_added": doc["grid"]["rows"] - cells(api, base["id"])[1]["grid"][
                           "rows"], "dropped": 0}
    image = client.get(out["data"]["image"]["url"], headers=auth)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    viewer = client.get(out["data"]["viewer"]["url"])
    assert viewer.status_code == 200
    new_input = client.get(out["data"]["viewer"]["url"].replace(
        "index.html", f"inputs/{files[-1].stem}"))
    assert new_input.status_code == 200


def test_deleted_inputs_leave_and_the_base_can_be_named(api: Any, config: ServiceConfig,
                                                        files: list[Path],
                                                        base: dict[str, Any]) -> None:
    client, auth = api
    before, _ = cells(api, base["id"])
    gone = files[0].stem
    assert client.delete(f"/v2/inputs/{gone}", headers=auth).status_code == 200
    later = visualize(api, config, **BASE, input_ids=[files[1].stem, files[2].stem])
    out = visualize(api, config, incremental=True, base=base["id"], model="pixels",
                    input_ids=[f.stem for f in files[N_OLD:N_OLD + 2]])
    assert later["status"]["code"] == "DONE" and out["status"]["code"] == "DONE", out["status"]
    after, doc = cells(api, out["id"])
    assert gone not in after and set(after) == (set(before) - {gone}) | {
        f.stem for f in files[N_OLD:N_OLD + 2]}
    assert doc["incremental"]["dropped"] == 1 and doc["incremental"]["added"] == 2
    assert len(set(after.values())) == len(after)
    kept = sum(after[i] == cell for i, cell in before.items() if i != gone)
    assert kept >= 0.95 * (len(before) - 1)


def test_no_base_is_refused(api: Any, files: list[Path]) -> None:
    client, auth = api
    upload(api, files[:4])
    assert_error(client.post("/v2/visualizations", headers=auth, json={"incremental": True}),
                 400, "no finished (DONE) visualization")
    pending = client.post("/v2/visualizations", headers=auth, json=BASE).json()["output"]["id"]
    assert_error(client.post("/v2/visualizations", headers=auth,
                             json={"incremental": True, "base": pending}), 400, "PENDING")


@sqlite_only
@pytest.mark.parametrize("body,http,words", [
    ({"incremental": True, "base": "nope"}, 404, "base: visualization 'nope' not found"),
    ({"incremental": True, "tile": 16}, 400, "tile: 16 differs"),
    ({"incremental": True, "model": "lite0"}, 400, "model: 'lite0' differs"),
    ({"incremental": True, "grid": "9x9"}, 400, "grid"),
    ({"base": "anything"}, 400, '"incremental": true'),
    ({"incremental": True, "input_ids": ["nope"]}, 404, "nope"),
])
def test_bad_incremental_requests(api: Any, base: dict[str, Any], body: dict[str, Any],
                                  http: int, words: str) -> None:
    client, auth = api
    assert_error(client.post("/v2/visualizations", headers=auth, json=body), http, words)


@sqlite_only
def test_nothing_to_add_is_refused(api: Any, files: list[Path],
                                   base: dict[str, Any]) -> None:
    client, auth = api
    r = client.post("/v2/visualizations", headers=auth,
                    json={"incremental": True, "input_ids": [files[0].stem]})
    assert_error(r, 400, f"nothing to add: every chosen input is already in visualization "
                         f"{base['id']}")


def test_failed_incremental_job_keeps_its_inputs_and_says_why(api: Any,
                                                              config: ServiceConfig,
                                                              base: dict[str, Any]) -> None:
    client, auth = api
    r = client.post("/v2/visualizations", headers=auth, json={"incremental": True})
    viz_id = r.json()["output"]["id"]
    assert client.delete(f"/v2/visualizations/{base['id']}", headers=auth).status_code == 200
    Worker(config).drain()
    out = client.get(f"/v2/visualizations/{viz_id}", headers=auth).json()["output"]
    assert out["status"]["code"] == "FAILED"
    assert "deleted before this job ran" in out["status"]["description"]
    assert out["input_count"] == N_OLD + N_NEW


def test_every_stage_of_an_incremental_add_has_a_progress_span(tmp_path: Path) -> None:
    from tsnegrid import Settings, build
    from tsnegrid.pipeline import add
    from tsnegrid.service.jobs import STAGE_SPANS, stage_percent

    images = emoji_subset(tmp_path / "all", 14)
    settings = Settings(cache_dir=tmp_path / "c", model="pixels", reducer="pca", tile=8,
                        html=True)
    build(images[:12], tmp_path / "out", settings)
    seen: list[str] = []
    add(images[12:], tmp_path / "out", progress=lambda stage, done, total: seen.append(stage))
    assert "place" in seen and set(seen) <= set(STAGE_SPANS), set(seen) - set(STAGE_SPANS)
    order = list(dict.fromkeys(seen))
    assert [stage_percent(s, 1, 1) for s in order] == sorted(stage_percent(s, 1, 1)
                                                             for s in order)
