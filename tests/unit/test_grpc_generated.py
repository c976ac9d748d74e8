"""The committed code of proto/broker/v1 is exactly what ``python -m proto.generate`` makes of the .proto files."""

from __future__ import annotations

from pathlib import Path

from proto import generate


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    written = generate.generate(tmp_path)
    assert written, "no .proto source found"
    stale = [str(path.relative_to(tmp_path)) for path in written
             if path.read_bytes() != (generate.ROOT / path.relative_to(tmp_path)).read_bytes()]
    assert stale == [], f"regenerate with `python -m proto.generate`: {stale}"


def test_every_proto_source_is_generated() -> None:
    sources = {str(p.relative_to(generate.ROOT)) for p in (generate.ROOT / "proto/broker/v1").glob("*.proto")}
    assert sources <= set(generate.SOURCES)
