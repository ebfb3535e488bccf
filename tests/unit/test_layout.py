"""The service never imports its tools: ``convener.tools`` (test caller, doctor, demo, the
in-process stack) uses the service's pieces, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

import convener

SRC = Path(convener.__file__).resolve().parent


def imports_of(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, at any depth: absolute names,
    relative ones resolved, and ``from a import b`` as both ``a`` and ``a.b``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def test_the_check_sees_absolute_relative_and_lazy_imports() -> None:
    source = ("import x.y\nfrom . import tools\nfrom ..tools import demo\n"
              "def f():\n    from convener.tools.stack import Stack\n")
    names = imports_of(source, "convener.app")
    assert {"x.y", "convener.app.tools", "convener.tools.demo", "convener.tools.stack"} <= names


def test_nothing_outside_tools_imports_tools() -> None:
    assert (SRC / "tools" / "testcall.py").exists()  # checked against the real layout
    offenders = {}
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(SRC / "tools"):
            continue
        package = ".".join(("convener", *path.relative_to(SRC).parent.parts))
        bad = {n for n in imports_of(path.read_text(), package)
               if n == "convener.tools" or n.startswith("convener.tools.")}
        if bad:
            offenders[str(path.relative_to(SRC))] = sorted(bad)
    assert not offenders, f"the service imports its tools: {offenders}"


def test_the_transcript_store_interface_imports_no_implementation() -> None:
    """``ops/transcripts/base.py`` holds the interface; ``sqlite`` and ``postgres`` import it, never
    the other way round, and only the factory (``open_store``) picks one."""
    base = SRC / "ops" / "transcripts" / "base.py"
    names = imports_of(base.read_text(), "convener.ops.transcripts")
    assert not {n for n in names if n.startswith("convener.ops.transcripts")}, sorted(names)
    for impl in ("sqlite", "postgres"):
        text = (SRC / "ops" / "transcripts" / f"{impl}.py").read_text()
        names = imports_of(text, "convener.ops.transcripts")
        others = {n for n in names if n.startswith("convener.ops.transcripts") and ".base" not in n}
        assert not others, (impl, sorted(others))


# The composition side: these build the application; every other module gets what it uses
# through the protocols in ``convener.app.services``.
COMPOSERS = {"app/application.py", "app/startup.py", "app/commands.py"}


def test_only_the_composition_side_imports_the_application() -> None:
    offenders = {}
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        if rel in COMPOSERS or path.is_relative_to(SRC / "tools"):
            continue
        package = ".".join(("convener", *path.relative_to(SRC).parent.parts))
        if "convener.app.application" in imports_of(path.read_text(), package):
            offenders[rel] = "imports convener.app.application"
    assert not offenders, offenders
