"""The configuration reference and the sample configuration, generated from the dataclasses.

Meanings come from the comments above or beside each field (and the class docstrings), so the
reference stays true as areas add keys: regenerate with ``python deploy/gen_config_reference.py``
(``--check`` fails when the committed files are stale).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from convener.config import ENV_KEYS, Config
from convener.ops.reference_meanings import MEANINGS

_HEADING = re.compile(r"^-{2,}.*$|^.*-{3,}$")
SAMPLE_VALUES: dict[str, Any] = {  # keys set (uncommented) in the sample configuration
    "ari.url": "http://127.0.0.1:8088/ari",
    "ari.user": "convener",
    "ari.app": "convener",
}


@dataclass
class Key:
    path: str  # "speech.whisper.model"
    type: str
    default: Any
    meaning: str
    required: bool = False


@dataclass
class Section:
    path: str  # "speech.whisper"; "ofp.agents.<name>" for a table of tables
    doc: str
    keys: list[Key]
    cls: type


def _comments(cls: type) -> dict[str, str]:
    """Field name -> the comment block above it plus its trailing comment."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = source.splitlines()
    out: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        n = node.lineno - 1
        while n >= 1 and n in comments and lines[n - 1].strip().startswith("#"):
            text = comments[n]
            if _HEADING.match(text):
                break
            above.insert(0, text)
            n -= 1
        beside = [comments[i] for i in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                  if i in comments and not lines[i - 1].strip().startswith("#")]
        out[node.target.id] = " ".join(above + beside).strip()
    return out


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " \\| ".join(repr(a).replace("'", '"') for a in get_args(tp))
    if origin in (list, tuple):
        return f"list of {_type_name(get_args(tp)[0])}" if get_args(tp) else "list"
    if origin is dict:
        if get_args(tp) and dataclasses.is_dataclass(get_args(tp)[1]):
            return "tables, one per name"
        return f"table of {_type_name(get_args(tp)[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, getattr(tp, "__name__", str(tp)))


def _default(f: dataclasses.Field[Any]) -> tuple[Any, bool]:
    if f.default is not dataclasses.MISSING:
        return f.default, False
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory(), False
    return None, True


def _doc(cls: type) -> str:
    doc = cls.__doc__ or ""
    if doc.startswith(cls.__name__ + "("):  # the dataclass-generated signature: no docstring
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ")


def sections(root: type = Config) -> list[Section]:
    """Every section of the configuration, in file order, nested tables after their parent."""
    result: list[Section] = []

    def walk(cls: type, path: str) -> None:
        hints = typing.get_type_hints(cls)
        comments = _comments(cls)
        keys: list[Key] = []
        nested: list[tuple[type, str]] = []
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            sub = f"{path}.{f.name}" if path else f.name
            if dataclasses.is_dataclass(tp):
                nested.append((tp, sub))  # type: ignore[arg-type]
                continue
            if get_origin(tp) is dict and dataclasses.is_dataclass(get_args(tp)[1]):
                nested.append((get_args(tp)[1], f"{sub}.<name>"))
            default, required = _default(f)
            meaning = comments.get(f.name, "") or MEANINGS.get(sub, "")
            keys.append(Key(sub, _type_name(tp), default, meaning, required))
        if path:
            result.append(Section(path, _doc(cls), keys, cls))
        for tp, sub in nested:
            walk(tp, sub)

    walk(root, "")
    return result


def all_key_paths(root: type = Config) -> list[str]:
    return [k.path for s in sections(root) for k in s.keys]


# --- rendering ---------------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if all(dataclasses.is_dataclass(v) for v in value.values()):
            return "{ " + ", ".join(f"{k} = {{ url = {toml_value(v.url)} }}" if hasattr(v, "url") else k
                                    for k, v in value.items()) + " }"
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return toml_value(str(value))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(root: type = Config) -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by deploy/gen_config_reference.py from the settings dataclasses: do not edit. -->",
        "",
        "convener reads one TOML file (`convener run --config FILE`; else `$CONVENER_CONFIG`; else",
        "`/etc/convener/convener.toml`) and the environment. Unknown keys are errors that name the key.",
        "A sample with every section: `deploy/convener.toml`.",
        "",
        "## Environment",
        "",
        "| variable | sets |",
        "| --- | --- |",
    ]
    for var, (section, key) in ENV_KEYS.items():
        out.append(f"| `{var}` | `{section}.{key}` |")
    out += [
        "| `CONVENER_OPS_TOKEN` | `ops.token` when that is empty |",
        "| `CONVENER__SECTION__KEY` | any top-level key of a section, e.g. `CONVENER__OPS__LOG_FORMAT=json` |",
        "",
        "Secrets (ARI password, Deepgram key, ops token) belong in the environment",
        "(`/etc/convener/convener.env` under systemd), not in the file.",
        "",
    ]
    for s in sections(root):
        out += [f"## [{s.path}]", ""]
        if s.doc:
            out += [s.doc, ""]
        out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for k in s.keys:
            name = k.path.rsplit(".", 1)[1]
            default = "(required)" if k.required else f"`{_md_cell(toml_value(k.default))}`"
            out.append(f"| `{name}` | {k.type} | {default} | {_md_cell(k.meaning) or '(undocumented)'} |")
        out.append("")
    return "\n".join(out)


def _wrap_comment(text: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 96)] if text else []


def sample_toml(root: type = Config) -> str:
    out = [
        "# convener configuration (sample with every section; generated by deploy/gen_config_reference.py).",
        "# Commented keys show their defaults. Reference: docs/configuration.md.",
        "# Secrets go to the environment, e.g. /etc/convener/convener.env under systemd:",
        "#   CONVENER_ARI_PASSWORD=...   DEEPGRAM_API_KEY=...   CONVENER_OPS_TOKEN=...",
    ]
    for s in sections(root):
        if "<name>" in s.path:
            out += ["", f"# [{s.path.replace('<name>', 'NAME')}]"]
            out += _wrap_comment(s.doc)
            for k in s.keys:
                out += _wrap_comment(k.meaning)
                name = k.path.rsplit(".", 1)[1]
                out.append(f"# {name} = " + ("(required)" if k.required else toml_value(k.default)))
            continue
        out += ["", f"[{s.path}]"]
        out += _wrap_comment(s.doc)
        for k in s.keys:
            name = k.path.rsplit(".", 1)[1]
            if isinstance(k.default, dict) and k.default and all(dataclasses.is_dataclass(v)
                                                                 for v in k.default.values()):
                out += _wrap_comment(k.meaning)
                out.append(f"# {name}: default {', '.join(k.default)} (see [{k.path}.NAME] below)")
                continue
            out += _wrap_comment(k.meaning)
            if k.path in SAMPLE_VALUES:
                out.append(f"{name} = {toml_value(SAMPLE_VALUES[k.path])}")
            else:
                out.append(f"# {name} = " + ("(required)" if k.required else toml_value(k.default)))
    # The agents: written out, since the defaults only fit the example agents on loopback.
    for name, agent in Config().ofp.agents.items():
        out += ["", f"[ofp.agents.{name}]", f"url = {toml_value(agent.url)}", f"timeout = {agent.timeout}"]
    return "\n".join(out) + "\n"
