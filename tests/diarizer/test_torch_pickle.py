"""Reading torch's legacy checkpoint format with pickle and numpy, and refusing anything else."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from diarizer.torch_pickle import MAGIC_NUMBER, PROTOCOL_VERSION, read_legacy_torch
from diarizer.weights import packaged_file
from jetscribe.errors import ModelError
from jetscribe.models.digests import SPEAKER_ENCODER_FILE


@pytest.fixture(scope="module")
def pretrained() -> Path:
    return packaged_file(SPEAKER_ENCODER_FILE)


def header() -> bytes:
    return b"".join(
        pickle.dumps(o, protocol=2)
        for o in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True})
    )


def test_the_encoder_checkpoint_reads_as_numpy_arrays(pretrained: Path) -> None:
    state = read_legacy_torch(pretrained)["model_state"]

    assert state["lstm.weight_hh_l2"].shape == (1024, 256)
    assert state["lstm.weight_hh_l2"].dtype == np.float32
    assert state["linear.bias"].shape == (256,)


def test_tensors_that_share_a_storage_come_back_at_their_own_offsets(pretrained: Path) -> None:
    state = read_legacy_torch(pretrained)["model_state"]

    assert not np.array_equal(state["lstm.bias_ih_l0"], state["lstm.bias_hh_l0"])
    assert state["lstm.weight_ih_l0"].flags.owndata


def test_a_pickle_that_names_anything_else_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    evil = tmp_path / "evil.pt"
    evil.write_bytes(header() + payload)

    with pytest.raises(ModelError, match=r"refers to os.system"):
        read_legacy_torch(evil)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_refused(tmp_path: Path, pretrained: Path) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(pretrained.read_bytes()[:1_000_000])

    with pytest.raises(ModelError, match="truncated"):
        read_legacy_torch(cut)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")

    with pytest.raises(ModelError, match="not a readable torch checkpoint"):
        read_legacy_torch(text)


def test_a_checkpoint_in_another_format_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "zip.pt"
    other.write_bytes(pickle.dumps(12345, protocol=2))

    with pytest.raises(ModelError, match="wrong magic number"):
        read_legacy_torch(other)


def test_a_big_endian_checkpoint_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.pt"
    big.write_bytes(
        b"".join(pickle.dumps(o, protocol=2) for o in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": False}))
    )

    with pytest.raises(ModelError, match="big-endian"):
        read_legacy_torch(big)
