"""Documents in the repository cite only what is in it: every Markdown or .proto file that a
tracked file mentions is a tracked file too. A reader who follows a citation finds the page."""

from __future__ import annotations

import io
import re
import subprocess
import tokenize
from collections.abc import Iterator
from pathlib import Path

THIS_FILE = Path(__file__).resolve()  # its own patterns and examples are not citations
ROOT = THIS_FILE.parents[2]
# `name.md`, `folder/name.proto` or `../outside/name.md` (a path out of the repository is a
# citation too, and never resolves), but not a dotted Python module such as
# `opentelemetry.proto.trace`.
CITATION = re.compile(r"(?<![\w/.-])((?:\.\./)*(?:[\w-]+/)*[\w-]+\.(?:md|proto))\b(?!\.\w)")
# Protobuf's well-known types ship with every protobuf installation.
EXTERNAL_PREFIXES = ("google/protobuf/",)
# Files fareway's commands and benchmarks write (`fareway eval --out`, `bench/overhead.py
# --out`), named where they are described.
WRITTEN = frozenset({"results.md", "overhead.md"})
# Generated code quotes its inputs.
SKIPPED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def tracked_files() -> list[Path]:
    """The files git tracks (the repository as a clone sees it)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout
    return [ROOT / name for name in listing.split("\0") if name]


def prose(path: Path, text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of what a reader reads: a Python file's comments and strings (its
    code says `self.md` without citing anything), every line of any other file."""
    if path.suffix != ".py":
        yield from enumerate(text.splitlines(), start=1)
        return
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            first = token.start[0]
            yield from enumerate(token.string.splitlines(), start=first)


def test_every_cited_document_is_in_the_repository() -> None:
    files = tracked_files()
    names = {path.name for path in files}
    paths = {path.relative_to(ROOT).as_posix() for path in files}
    missing: list[str] = []
    for path in files:
        if path.name.endswith(SKIPPED_SUFFIXES) or path == THIS_FILE or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in prose(path, text):
            for cited in CITATION.findall(line):
                if cited.startswith(EXTERNAL_PREFIXES) or cited in WRITTEN:
                    continue
                if cited not in paths and Path(cited).name not in names:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {cited}")
    assert not missing, "citations of files that are not in the repository:\n" + "\n".join(missing)
