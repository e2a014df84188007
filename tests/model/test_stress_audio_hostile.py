"""The hostile corpus against the stress model's decoder (stress_model.audio), which the stress
endpoint runs on whatever it is posted: the same codes and the same memory bound as the backend's
decoder (tests/unit/test_audio_hostile.py), in a child process with a capped address space."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from hostile_audio import (
    CONCAT_VICTIM,
    HOSTILE,
    assert_refused_in_bounded_memory,
    assert_typical_decodes_in_bounded_memory,
    declaring,
    mkv_pcm,
)
from model_helpers import tone
from wavs import wav_bytes

from stress_model.audio import BadAudioError, decode, load
from stress_model.config import FeatureConfig


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / CONCAT_VICTIM).write_bytes(wav_bytes(tone(220.0, 2.0, 16_000), 16_000))
    return tmp_path


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_rejected_with_its_code_in_bounded_memory(name: str, workdir: Path) -> None:
    assert_refused_in_bounded_memory("stress_model", name, workdir)


def test_typical_upload_decodes_in_the_same_bound(workdir: Path) -> None:
    assert_typical_decodes_in_bounded_memory("stress_model", workdir)


def test_concat_script_never_reads_the_named_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    with pytest.raises(BadAudioError) as raised:
        load(HOSTILE["concat_script"].make(), FeatureConfig())
    assert raised.value.code == "unsupported_container"


def test_output_is_capped_whatever_the_header_declares() -> None:
    # 20 s of audio whose header says 2 s: decoding still stops at max_seconds.
    out = decode(declaring(mkv_pcm(16_000, 320_000, packet_samples=1024), 2.0), max_seconds=3.0)
    assert out.size == 48_000


def test_a_long_dataset_file_is_read_up_to_max_seconds(tmp_path: Path) -> None:
    # Training reads the project's own files: a long recording is used, not refused as a post is.
    path = tmp_path / "long.wav"
    path.write_bytes(wav_bytes(tone(220.0, 130.0, 8_000), 8_000))
    assert load(path, FeatureConfig()).size > 0
    with pytest.raises(BadAudioError) as raised:
        load(path.read_bytes(), FeatureConfig())
    assert raised.value.code == "audio_too_long"


def test_an_unexpected_decoder_error_is_bad_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug deep in the decoder")

    monkeypatch.setattr(av, "AudioResampler", broken)
    with pytest.raises(BadAudioError) as raised:
        decode(wav_bytes(tone(220.0, 1.0, 16_000), 16_000))
    assert raised.value.code == "undecodable_audio"


def test_stereo_still_decodes() -> None:
    stereo = np.stack([tone(300.0, 1.0, 44_100)] * 2, axis=1).reshape(-1)
    assert decode(wav_bytes(stereo, 44_100, channels=2)).size == pytest.approx(16_000, abs=160)
