"""Reading Dockerfiles and `.dockerignore` the way `docker build` does, for the static deployment checks."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str | None]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage_args(self, stage: Stage) -> dict[str, str | None]:
        """ARGs declared in `stage` with their defaults (a global default applies when redeclared bare)."""
        found: dict[str, str | None] = {}
        for instruction in stage.all("ARG"):
            name, _, default = instruction.args.partition("=")
            found[name] = _unquote(default) if default else self.global_args.get(name)
        return found


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions per stage, continuation lines joined and comments dropped."""
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif not stages and keyword == "ARG":
            name, _, default = args.partition("=")
            global_args[name] = _unquote(default) if default else None
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, args))
    return Dockerfile(global_args, stages)


def copy_sources(instruction: Instruction) -> list[str]:
    """The build-context paths a COPY reads (none for `COPY --from=<stage>`)."""
    words = _exec_or_shell_words(instruction.args)
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return []
    return [w for w in words if not w.startswith("--")][:-1]


def copy_destination(instruction: Instruction) -> str:
    return [w for w in _exec_or_shell_words(instruction.args) if not w.startswith("--")][-1]


def env_names(instruction: Instruction) -> list[str]:
    """Variable names an ENV instruction sets (`ENV A=1 B=2` form)."""
    return [word.split("=", 1)[0] for word in shlex.split(instruction.args) if "=" in word]


def expand_args(text: str, args: dict[str, str | None]) -> str:
    """`${NAME}` and `$NAME` replaced by the ARG defaults, as the builder does with no --build-arg."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1)) or "", text)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether `.dockerignore` keeps `path` out of the build context (last matching pattern wins)."""
    excluded = False
    parts = path.split("/")
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(_match(prefix, pattern) for prefix in prefixes):
            excluded = not negated
    return excluded


def read_dockerignore(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _match(path: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        tail = pattern[3:]
        return fnmatch.fnmatchcase(path, tail) or fnmatch.fnmatchcase(path, "*/" + tail)
    return fnmatch.fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    return lines


def _exec_or_shell_words(args: str) -> list[str]:
    if args.startswith("["):
        return re.findall(r'"([^"]*)"', args)
    return shlex.split(args)


def _unquote(value: str) -> str:
    return value.strip().strip('"').strip("'")
