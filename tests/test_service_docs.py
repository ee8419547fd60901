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
