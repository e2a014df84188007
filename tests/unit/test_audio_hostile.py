"""The hostile corpus against the functions decoder (emochat.pipeline.audio): each file rejected with its own
code, within a fixed memory bound, in a child process whose address space is capped (so a decoder
that does blow up fails the test instead of the machine). A typical phone upload, decoded the same
way, shows that the bound is not met by refusing everything."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from hostile_audio import (
    CONCAT_VICTIM,
    HOSTILE,
    assert_refused_in_bounded_memory,
    assert_typical_decodes_in_bounded_memory,
    declaring,
    mkv_pcm,
    wav,
)
from wavs import make_wav

from emochat.pipeline.audio import UndecodableAudio, decode_audio


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / CONCAT_VICTIM).write_bytes(make_wav(seconds=2.0))
    return tmp_path


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_rejected_with_its_code_in_bounded_memory(name: str, workdir: Path) -> None:
    assert_refused_in_bounded_memory("functions", name, workdir)


def test_typical_upload_decodes_in_the_same_bound(workdir: Path) -> None:
    assert_typical_decodes_in_bounded_memory("functions", workdir)


def test_concat_script_never_reads_the_named_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    with pytest.raises(UndecodableAudio) as raised:
        decode_audio(HOSTILE["concat_script"].make())
    assert raised.value.code == "unsupported_container"


def test_decoded_length_is_capped_in_the_output_domain() -> None:
    # 20 s of audio whose header says 2 s: the declaration passes, the output is still capped.
    decoded = decode_audio(declaring(mkv_pcm(16_000, 320_000, packet_samples=1024), 2.0), max_duration_s=3.0)
    assert 3_000 < decoded.duration_ms <= 4_000


def test_an_unexpected_decoder_error_is_undecodable_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug deep in the decoder")

    monkeypatch.setattr(av, "AudioResampler", broken)
    with pytest.raises(UndecodableAudio) as raised:
        decode_audio(make_wav(seconds=1.0))
    assert raised.value.code == "undecodable_audio"


@pytest.mark.parametrize(
    ("rate", "channels", "code"),
    [
        (7_999, 1, "unsupported_sample_rate"),
        (96_001, 1, "unsupported_sample_rate"),
        (16_000, 9, "too_many_channels"),
    ],
)
def test_stream_limits_are_checked_before_decoding(rate: int, channels: int, code: str) -> None:
    with pytest.raises(UndecodableAudio) as raised:
        decode_audio(wav(rate, channels, 1_000))
    assert raised.value.code == code


@pytest.mark.parametrize(("rate", "channels"), [(8_000, 1), (96_000, 2), (16_000, 8)])
def test_stream_limits_accept_what_phones_record(rate: int, channels: int) -> None:
    decoded = decode_audio(wav(rate, channels, rate))
    assert abs(decoded.duration_ms - 1000) <= 20
