"""CTranslate2 -> openai-whisper conversion (pipelines/convert.py)."""

from __future__ import annotations

import base64
import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from rapidfuzz.distance import Levenshtein

from pipelines.convert import alignment_heads_dump, load_openai_checkpoint, read_ct2_model

# Speech in the sample starts at about 6.5 s; 20 s holds both speakers and keeps base cheap.
CLIP_SECONDS = 20
DIMS = {
    "tiny.en": dict(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=384,
        n_audio_head=6,
        n_audio_layer=4,
        n_vocab=51864,
        n_text_ctx=448,
        n_text_state=384,
        n_text_head=6,
        n_text_layer=4,
    ),
    "base": dict(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=512,
        n_audio_head=8,
        n_audio_layer=6,
        n_vocab=51865,
        n_text_ctx=448,
        n_text_state=512,
        n_text_head=8,
        n_text_layer=6,
    ),
}


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


@pytest.mark.parametrize("spec", ["tiny.en", "base"])
def test_checkpoint_has_openai_layout(models_dir: Path, spec: str) -> None:
    checkpoint = torch.load(models_dir / f"whisper-{spec}.pt", weights_only=True)
    assert checkpoint["dims"] == DIMS[spec]
    state = checkpoint["model_state_dict"]
    assert state["decoder.token_embedding.weight"].dtype == torch.float16
    assert "encoder.blocks.0.attn.key.bias" not in state  # openai's key has no bias
    assert "decoder.blocks.0.cross_attn.value.bias" in state
    # CTranslate2 fuses q/k/v; the split must give back square projections.
    n = DIMS[spec]["n_text_state"]
    assert state["decoder.blocks.0.attn.query.weight"].shape == (n, n)


@pytest.mark.parametrize("spec", ["tiny.en", "base"])
def test_alignment_heads_come_from_ct2_config(models_dir: Path, spec: str) -> None:
    import whisper

    # CT2's config.json heads for these two equal openai-whisper's built-in ones.
    model = load_openai_checkpoint(models_dir / f"whisper-{spec}.pt")
    builtin = gzip.decompress(base64.b85decode(whisper._ALIGNMENT_HEADS[spec]))
    dims = DIMS[spec]
    expected = np.frombuffer(builtin, dtype=bool).reshape(dims["n_text_layer"], dims["n_text_head"])
    assert np.array_equal(model.alignment_heads.to_dense().numpy(), expected)


def test_alignment_heads_dump_round_trips() -> None:
    dump = alignment_heads_dump([[0, 1], [2, 3]], 3, 4)
    mask = np.frombuffer(gzip.decompress(base64.b85decode(dump)), dtype=bool).reshape(3, 4)
    assert {(int(a), int(b)) for a, b in zip(*np.nonzero(mask), strict=True)} == {(0, 1), (2, 3)}


def test_reader_resolves_aliases(models_dir: Path) -> None:
    variables = read_ct2_model(models_dir / "whisper-tiny.en-ct2" / "model.bin")
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    assert int(variables["decoder/num_heads"]) == 6


@pytest.mark.parametrize("spec", ["tiny.en", pytest.param("base", marks=pytest.mark.slow)])
def test_converted_model_transcribes_like_faster_whisper(
    models_dir: Path, sample_audio: np.ndarray, spec: str
) -> None:
    import whisper
    from faster_whisper import WhisperModel

    audio = sample_audio[: CLIP_SECONDS * 16000]
    options = dict(language="en", temperature=0.0, beam_size=5, condition_on_previous_text=False)

    # whisper.load_model must accept the file as is (the plain openai-whisper path).
    assert whisper.load_model(str(models_dir / f"whisper-{spec}.pt"), device="cpu").dims.n_vocab
    model = load_openai_checkpoint(models_dir / f"whisper-{spec}.pt")
    ours = model.transcribe(audio, fp16=False, word_timestamps=True, **options)

    reference = WhisperModel(
        str(models_dir / f"whisper-{spec}-ct2"),
        device="cpu",
        compute_type="float32",
        cpu_threads=torch.get_num_threads(),
    )
    segments, _ = reference.transcribe(audio, **options)
    expected = "".join(s.text for s in segments)

    similarity = Levenshtein.normalized_similarity(words(ours["text"]), words(expected))
    assert similarity > 0.9, (ours["text"], expected)

    timed = [w for s in ours["segments"] for w in s["words"]]
    assert len(timed) >= 10
    starts = [w["start"] for w in timed]
    assert starts == sorted(starts)
    assert all(0 <= w["start"] <= w["end"] <= CLIP_SECONDS + 0.5 for w in timed)
    assert starts[0] > 5.0  # nobody speaks in the first 6 s
