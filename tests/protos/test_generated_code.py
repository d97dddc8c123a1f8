"""The committed generated code must be what `make protos` produces from the committed protos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
GENERATED = ("router_pb2.py", "router_pb2.pyi", "router_pb2_grpc.py")
GENERATED += tuple(name.replace("router", "budget") for name in GENERATED)


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "fareway/v1").glob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            *sources,
        ],
        cwd=PROTOS,
        check=True,
    )
    stale = [
        name
        for name in GENERATED
        if (tmp_path / "fareway/v1" / name).read_bytes()
        != (PROTOS / "fareway/v1" / name).read_bytes()
    ]
    assert not stale, f"generated code is stale, run `make protos`: {stale}"


def test_every_proto_has_generated_code() -> None:
    protos = {p.stem for p in (PROTOS / "fareway/v1").glob("*.proto")}
    assert protos == {"router", "budget"}, "update GENERATED above when adding a proto file"
