"""Model files carried inside PyPI packages that jetscribe locates but never imports.

`importlib.util.find_spec` finds a top-level package without running its code, so a package installed only for
its data (or one whose own imports would pull in more than the file) is never executed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jetscribe.errors import ModelError
from jetscribe.models.digests import PackagedFile, verify_sha256


def packaged_file(spec: PackagedFile, *, install: str) -> Path:
    """The path of `spec`'s file inside its installed package; ModelError (ending with `install`) when missing."""
    try:
        found = importlib.util.find_spec(spec.package)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"the package {spec.distribution!r}, which carries {spec.path}, is not installed: {install}")
    path = Path(next(iter(found.submodule_search_locations))) / spec.path
    if not path.is_file():
        raise ModelError(f"{path} is missing from the installed {spec.distribution!r} package: {install}")
    return path


def verified_packaged_file(spec: PackagedFile, *, what: str, install: str) -> Path:
    """`spec`'s file after checking it against its pinned SHA-256; ModelError when missing or different."""
    path = packaged_file(spec, install=install)
    verify_sha256([path], spec.sha256, what=f"{what} ({spec.distribution} {spec.version})", remedy=install)
    return path
