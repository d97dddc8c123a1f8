"""Lay out the source folders as the `fareway.*` packages they install as, for mypy.

pyproject maps `fareway.server` to `server/` and so on; an editable install resolves that with
an import hook that mypy cannot follow. Directory symlinks under build/typecheck/fareway/ give
mypy the installed shape, and pick up new files without a reinstall.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck" / "fareway"


def main() -> None:
    """Create or refresh the symlinks, one per top-level fareway package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    TREE.mkdir(parents=True, exist_ok=True)
    for package, folder in mapping.items():
        parts = package.split(".")
        if len(parts) != 2:
            continue  # nested packages come along inside their parent's folder
        link = TREE / parts[1]
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(ROOT / folder, target_is_directory=True)


if __name__ == "__main__":
    main()
