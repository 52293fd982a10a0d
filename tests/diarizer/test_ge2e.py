"""The numpy GE2E encoder: the same embeddings as resemblyzer's torch model, from digest-checked weights."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path
from typing import Final

import numpy as np
import pytest

from diarizer import Ge2eEncoder
from diarizer.weights import packaged_file
from jetscribe.errors import ModelError
from jetscribe.models.digests import SPEAKER_ENCODER_FILE, PackagedFile
from tests.diarizer.conversations import speak

FIXTURES: Final = Path(__file__).parents[1] / "fixtures"
REFERENCE: Final = json.loads((FIXTURES / "speaker_encoder_reference.json").read_text())


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768


@pytest.fixture(scope="module")
def encoder() -> Ge2eEncoder:
    return Ge2eEncoder.load()


def test_embeddings_match_those_resemblyzers_torch_model_recorded(encoder: Ge2eEncoder) -> None:
    samples = read_wav(FIXTURES / REFERENCE["audio"])

    embeddings = encoder.embed(samples, np.array(REFERENCE["starts"]))

    np.testing.assert_allclose(embeddings, np.array(REFERENCE["embeddings"]), atol=1e-5)


def test_embeddings_are_unit_vectors_of_256(encoder: Ge2eEncoder) -> None:
    samples = read_wav(FIXTURES / "audio" / "en2.wav")

    embeddings = encoder.embed(samples, np.array([0, 8000, 16000]))

    assert embeddings.shape == (3, 256)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_one_voice_is_closer_to_itself_than_to_another(encoder: Ge2eEncoder) -> None:
    window = encoder.window_samples
    first, second = speak("The weather was cold and windy this morning.", "en+f3"), speak("We bought bread.", "en+f3")
    other = speak("The weather was cold and windy this morning.", "en+m7")
    a, b, c = (encoder.embed(s, np.array([0]))[0] for s in (first[:window], second[:window], other[:window]))

    assert a @ b > a @ c


def test_a_window_past_the_end_is_padded_with_silence(encoder: Ge2eEncoder) -> None:
    samples = read_wav(FIXTURES / "audio" / "en1.wav")
    start = len(samples) - encoder.window_samples // 2

    padded = np.concatenate([samples, np.zeros(encoder.window_samples, dtype=np.float32)])

    np.testing.assert_allclose(
        encoder.embed(samples, np.array([start])), encoder.embed(padded, np.array([start])), atol=1e-6
    )


def test_progress_counts_the_windows_done(encoder: Ge2eEncoder) -> None:
    samples = read_wav(FIXTURES / "audio" / "en1.wav")
    done: list[int] = []

    encoder.embed(samples, np.zeros(70, dtype=np.int64), done.append)

    assert done == [64, 70]


def test_weights_that_fail_their_digest_are_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "pretrained.pt"
    shutil.copyfile(packaged_file(SPEAKER_ENCODER_FILE), damaged)
    with damaged.open("r+b") as f:
        f.seek(10_000)
        f.write(b"\x00\x01\x02\x03")

    with pytest.raises(ModelError, match="does not match its pinned SHA-256"):
        Ge2eEncoder.load(damaged)


def test_missing_weights_are_refused_with_their_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="do not exist"):
        Ge2eEncoder.load(tmp_path / "absent.pt")


def test_a_package_that_is_not_installed_is_named_with_how_to_install_it() -> None:
    absent = PackagedFile("no-such-weights", "1.0", "no_such_weights_pkg", "model.pt", "0" * 64)

    with pytest.raises(ModelError, match=r"not installed: install it with .*requirements/weights.txt"):
        packaged_file(absent)


def test_a_state_dict_with_a_wrong_shape_is_refused() -> None:
    state = {"lstm.weight_ih_l0": np.zeros((1024, 80), dtype=np.float32)}

    with pytest.raises(ModelError, match=r"lstm.weight_ih_l0 should have shape \(1024, 40\)"):
        Ge2eEncoder(state)


def test_the_weights_file_is_found_without_importing_its_package() -> None:
    import sys

    path = packaged_file(SPEAKER_ENCODER_FILE)

    assert path.name == "pretrained.pt"
    assert "resemblyzer" not in sys.modules
