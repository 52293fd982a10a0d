"""Convert a CTranslate2 Whisper model into the GGML file whisper.cpp loads.

The layout follows whisper.cpp's `convert-pt-to-ggml.py`: a header of hyper-parameters, the
Slaney mel filterbank, the byte-level BPE vocabulary, then every tensor with its name. The
conversion is pure numpy and deterministic, so a converted file can be cached by content.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np

from jetscribe.errors import ModelError
from jetscribe.models.ct2 import Ct2Model
from jetscribe.models.files import GGML_MAGIC

_SAMPLE_RATE: Final = 16_000
_N_FFT: Final = 400
_EOT_TOKEN: Final = "<|endoftext|>"


def write_ggml(model: Ct2Model, dest: Path) -> None:
    """Write `model` as a whisper.cpp GGML file at `dest` (atomically: temp name, then rename)."""
    hparams = _hparams(model)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as f:
        f.write(struct.pack("<I", GGML_MAGIC))
        f.write(struct.pack("<11i", *hparams))
        n_mels = hparams[9]
        filters = mel_filters(n_mels)
        f.write(struct.pack("<2i", *filters.shape))
        f.write(filters.astype("<f4").tobytes())
        _write_vocabulary(f, model.vocabulary)
        for name, tensor in _tensors(model):
            _write_tensor(f, name, tensor)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(dest)


def _hparams(model: Ct2Model) -> tuple[int, ...]:
    v = model.variables
    try:
        n_vocab, n_text_state = v["decoder/embeddings/weight"].shape
        n_audio_ctx, n_audio_state = v["encoder/position_encodings/encodings"].shape
        n_text_ctx = v["decoder/position_encodings/encodings"].shape[0]
        n_mels = v["encoder/conv1/weight"].shape[1]
        n_audio_head = model.scalar("encoder/num_heads")
        n_text_head = model.scalar("decoder/num_heads")
    except KeyError as exc:
        raise ModelError(f"model lacks tensor {exc.args[0]!r}: not a complete Whisper model") from exc
    return (
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head,
        _layer_count(model, "encoder"),
        n_text_ctx,
        n_text_state,
        n_text_head,
        _layer_count(model, "decoder"),
        n_mels,
        1,  # ftype: f16
    )


def _layer_count(model: Ct2Model, side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in model.variables:
        n += 1
    if n == 0:
        raise ModelError(f"model has no {side} layers")
    return n


def mel_filters(n_mels: int) -> np.ndarray:
    """The Slaney mel filterbank of `librosa.filters.mel(sr=16000, n_fft=400)`, accumulated in float32.

    Accumulating in float32, as librosa does, makes it bit-identical to Whisper's `mel_filters.npz`.
    """
    fftfreqs = np.fft.rfftfreq(n=_N_FFT, d=1.0 / _SAMPLE_RATE)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(_SAMPLE_RATE / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + _N_FFT // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    return weights


_F_SP: Final = 200.0 / 3
_MIN_LOG_HZ: Final = 1000.0
_MIN_LOG_MEL: Final = _MIN_LOG_HZ / _F_SP
_LOGSTEP: Final = np.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz >= _MIN_LOG_HZ:
        return float(_MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOGSTEP)
    return hz / _F_SP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freqs = _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the printable stand-in of each byte back to the byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


def _write_vocabulary(f: BinaryIO, vocabulary: list[str]) -> None:
    try:
        eot = vocabulary.index(_EOT_TOKEN)
    except ValueError as exc:
        raise ModelError(f"vocabulary has no {_EOT_TOKEN} token: not a Whisper vocabulary") from exc
    decoder = _byte_decoder()
    f.write(struct.pack("<i", eot))
    for token in vocabulary[:eot]:
        try:
            data = bytes(decoder[ch] for ch in token)
        except KeyError as exc:
            raise ModelError(f"vocabulary token {token!r} is not byte-level BPE") from exc
        f.write(struct.pack("<i", len(data)))
        f.write(data)


def _tensors(model: Ct2Model) -> Iterator[tuple[str, np.ndarray]]:
    v = model.variables

    def get(name: str) -> np.ndarray:
        try:
            return v[name]
        except KeyError as exc:
            raise ModelError(f"model lacks tensor {name!r}: not a complete Whisper model") from exc

    def linear(src: str, dst: str, *, bias: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{dst}.weight", get(f"{src}/weight")
        if bias:
            yield f"{dst}.bias", get(f"{src}/bias")

    def norm(src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{dst}.weight", get(f"{src}/gamma")
        yield f"{dst}.bias", get(f"{src}/beta")

    def self_attention(src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
        yield from norm(f"{src}/layer_norm", f"{dst}.attn_ln")
        w, b = get(f"{src}/linear_0/weight"), get(f"{src}/linear_0/bias")
        d = w.shape[1]
        yield f"{dst}.attn.query.weight", w[:d]
        yield f"{dst}.attn.query.bias", b[:d]
        yield f"{dst}.attn.key.weight", w[d : 2 * d]
        yield f"{dst}.attn.value.weight", w[2 * d :]
        yield f"{dst}.attn.value.bias", b[2 * d :]
        yield from linear(f"{src}/linear_1", f"{dst}.attn.out")

    def mlp(src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
        yield from norm(f"{src}/layer_norm", f"{dst}.mlp_ln")
        yield from linear(f"{src}/linear_0", f"{dst}.mlp.0")
        yield from linear(f"{src}/linear_1", f"{dst}.mlp.2")

    yield "encoder.positional_embedding", get("encoder/position_encodings/encodings")
    for i in (1, 2):
        yield f"encoder.conv{i}.weight", get(f"encoder/conv{i}/weight")
        bias = get(f"encoder/conv{i}/bias")
        yield f"encoder.conv{i}.bias", bias.reshape(bias.shape[0], 1)
    for i in range(_layer_count(model, "encoder")):
        yield from self_attention(f"encoder/layer_{i}/self_attention", f"encoder.blocks.{i}")
        yield from mlp(f"encoder/layer_{i}/ffn", f"encoder.blocks.{i}")
    yield from norm("encoder/layer_norm", "encoder.ln_post")

    yield "decoder.positional_embedding", get("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", get("decoder/embeddings/weight")
    for i in range(_layer_count(model, "decoder")):
        block = f"decoder.blocks.{i}"
        yield from self_attention(f"decoder/layer_{i}/self_attention", block)
        src = f"decoder/layer_{i}/attention"
        yield from norm(f"{src}/layer_norm", f"{block}.cross_attn_ln")
        yield from linear(f"{src}/linear_0", f"{block}.cross_attn.query")
        w, b = get(f"{src}/linear_1/weight"), get(f"{src}/linear_1/bias")
        d = w.shape[1]
        yield f"{block}.cross_attn.key.weight", w[:d]
        yield f"{block}.cross_attn.value.weight", w[d:]
        yield f"{block}.cross_attn.value.bias", b[d:]
        yield from linear(f"{src}/linear_2", f"{block}.cross_attn.out")
        yield from mlp(f"decoder/layer_{i}/ffn", block)
    yield from norm("decoder/layer_norm", "decoder.ln")


def _keeps_f32(name: str, tensor: np.ndarray) -> bool:
    return tensor.ndim == 1 or (name.startswith("encoder.conv") and name.endswith(".bias")) or "positional" in name


def _write_tensor(f: BinaryIO, name: str, tensor: np.ndarray) -> None:
    f32 = _keeps_f32(name, tensor)
    data = np.ascontiguousarray(tensor, dtype="<f4" if f32 else "<f2")
    encoded = name.encode("utf-8")
    f.write(struct.pack("<3i", data.ndim, len(encoded), 0 if f32 else 1))
    f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
    f.write(encoded)
    f.write(data.tobytes())
