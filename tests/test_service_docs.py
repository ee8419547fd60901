"""docs/service.md and the code agree: every setting and its default is documented."""

from __future__ import annotations

from pathlib import Path

from tsnegrid.service.config import ServiceConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "service.md"


def test_every_setting_is_documented_with_its_default() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
            for line in text.splitlines() if line.startswith("| `TSNEGRID_SERVICE_")}
    fields = ServiceConfig.model_fields
    assert set(rows) == {f"TSNEGRID_SERVICE_{name.upper()}" for name in fields}
    for name, field in fields.items():
        if field.is_required() or field.default is None:  # a place in DATA, said in words
            continue
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        shown = "(empty)" if default == "" else str(default)
        assert rows[f"TSNEGRID_SERVICE_{name.upper()}"] == shown, name


def test_every_route_is_in_the_tables_of_methods() -> None:
    """Each served (method, path) is a row of 'The v2 methods served' or of the table of this
    server's own routes, and each row is served."""
    from tsnegrid.service.app import create_app

    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The v2 methods served", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.split("|")[1:-1]]
        if len(cells) >= 3 and cells[1] in {"GET", "POST", "DELETE", "PATCH"}:
            rows.add((cells[1], cells[2]))
    spec = create_app(ServiceConfig(data_dir=Path("unused"))).openapi()
    served = {(m.upper(), p) for p, item in spec["paths"].items() for m in item
              if p.startswith("/v2/")}
    assert rows == served


def test_the_grpc_column_names_the_methods_the_servicer_serves() -> None:
    """A method marked gRPC 'yes' is served over gRPC, and each method served is so marked."""
    from tsnegrid.service.api.grpc.servicer import SERVED
    from tsnegrid.service.api.rules import methods

    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The v2 methods served", 1)[1].split("\n## ", 1)[0]
    marked = {cells[0] for line in section.splitlines()
              if len(cells := [c.strip().strip("`") for c in line.split("|")[1:-1]]) == 5
              and cells[4] == "yes"}
    assert marked == set(SERVED)
    assert set(SERVED) <= set(methods())  # every name is a method of clarifai.api.V2
