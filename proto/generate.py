"""Regenerate the Python code of the public API (proto/broker/v1) from its .proto files: ``python -m proto.generate``.

Run from anywhere; it writes next to the sources. ``--out DIR`` writes the tree under DIR instead, which is how the
test proves the committed code is what the committed .proto files produce. The .pyi stubs get a mypy
``ignore-errors`` header because protobuf ships no type stubs for the runtime the stubs import.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("proto/broker/v1/errors.proto", "proto/broker/v1/queues.proto", "proto/broker/v1/admin.proto",
           "proto/broker/v1/streams.proto",
           "proto/broker/v1/topics.proto", "proto/broker/v1/groups.proto")
STUB_HEADER = "# mypy: ignore-errors\n"


def generate(out: Path = ROOT) -> list[Path]:
    """Compile every source into ``out`` (mirroring the repository layout); returns the files written."""
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["grpc_tools.protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
            f"--grpc_python_out={out}", *(str(ROOT / s) for s in SOURCES if (ROOT / s).exists())]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    written: list[Path] = []
    for source in SOURCES:
        if not (ROOT / source).exists():
            continue
        stem = out / source.removesuffix(".proto")
        stub = stem.with_name(stem.name + "_pb2.pyi")
        stub.write_text(STUB_HEADER + stub.read_text())
        written += [stem.with_name(stem.name + suffix) for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="root of the tree to write (default: the repository)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
