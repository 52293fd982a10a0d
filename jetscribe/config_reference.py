"""The settings reference: every environment variable with its default and meaning, for README.md
(`jetscribe config`). Meanings are the attribute docstrings of `Settings`, read from its source."""

from __future__ import annotations

import ast
import inspect
import itertools
import re
from pathlib import Path
from typing import Final

import msgspec

from jetscribe.config import Settings, env_name

# Defaults that depend on the machine are described rather than shown.
_DESCRIBED_DEFAULTS: Final = {"threads": "CPUs this process may use"}


def field_docs(struct: type[msgspec.Struct] = Settings) -> dict[str, str]:
    """Field name → its attribute docstring in the source of `struct` (`Settings` by default)."""
    tree = ast.parse(inspect.getsource(struct))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _default_text(name: str, default: object) -> str:
    if name in _DESCRIBED_DEFAULTS:
        return _DESCRIBED_DEFAULTS[name]
    if default is None or default == ():
        return ""
    if isinstance(default, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, Path):
        return str(default)
    return str(default)


def settings_table() -> str:
    """The Markdown table of every setting."""
    names = {f.name for f in msgspec.structs.fields(Settings)}

    def variables(text: str) -> str:
        return re.sub(r"`([a-z_]+)`", lambda m: f"`{env_name(m[1])}`" if m[1] in names else m[0], text)

    docs = {name: variables(doc) for name, doc in field_docs().items()}
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for field in msgspec.structs.fields(Settings):
        default = _default_text(field.name, field.default)
        lines.append(f"| `{env_name(field.name)}` | {f'`{default}`' if default else ''} | {docs.get(field.name, '')} |")
    return "\n".join(lines) + "\n"
