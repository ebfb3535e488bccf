"""docs/configuration.md and the sample config are generated from the settings dataclasses."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from convener.config import Config
from convener.ops.reference import all_key_paths, markdown, sample_toml, sections

REPO = Path(__file__).resolve().parents[2]
REGEN = " (regenerate: .venv/bin/python deploy/gen_config_reference.py)"


@dataclass
class Inner:
    # Above the field,
    # on two lines.
    a: int = 1
    b: str = "x"  # beside the field
    # --- a group heading ------------------------------------------------
    c: list[str] = field(default_factory=list)


@dataclass
class Root:
    inner: Inner = field(default_factory=Inner)


def _walk(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(default):
            out += _walk(type(default), path + ".")
        else:
            out.append(path)
    return out


def test_every_key_of_every_section_is_in_the_reference():
    doc = (REPO / "docs" / "configuration.md").read_text()
    expected = _walk(Config)
    assert len(expected) > 100
    assert set(all_key_paths()) >= set(expected)
    for path in expected:
        section, key = path.rsplit(".", 1)
        block = doc.split(f"## [{section}]\n", 1)
        assert len(block) == 2, f"section [{section}] missing from docs/configuration.md" + REGEN
        assert f"| `{key}` |" in block[1].split("\n## ", 1)[0], f"{path} missing from docs/configuration.md" + REGEN
    assert "## [ofp.agents.<name>]" in doc and "| `url` | string | (required) |" in doc


def test_generated_files_are_up_to_date():
    r = subprocess.run([sys.executable, str(REPO / "deploy" / "gen_config_reference.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + REGEN


def test_meanings_come_from_field_comments():
    (sec,) = sections(Root)
    meanings = {k.path: k.meaning for k in sec.keys}
    assert meanings == {"inner.a": "Above the field, on two lines.", "inner.b": "beside the field", "inner.c": ""}
    text = markdown(Root)
    assert "| `a` | integer | `1` | Above the field, on two lines. |" in text
    assert "| `c` | list of string | `[]` | (undocumented) |" in text
    sample = "[inner]\n# Above the field, on two lines.\n# a = 1\n# beside the field\n# b = \"x\"\n# c = []"
    assert sample in sample_toml(Root)


def test_every_metric_is_documented():
    from convener.ops import metrics

    doc = (REPO / "docs" / "operations.md").read_text()
    for m in metrics.REGISTRY.all():
        assert f"| `{m.name}` | {m.kind} |" in doc, f"{m.name} missing from docs/operations.md"
