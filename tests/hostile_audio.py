"""A corpus of hostile audio uploads, made at test time (PyAV's own muxers and a few hand-built
headers), and a way to decode one in a child process whose memory can be measured and capped.

Each file is small (under 2.1 MiB) but claims something a phone never records: a 1 Hz or 384 kHz
sample rate, 64 channels, one packet of megabytes, hours of audio, another file to read, a codec
nobody needs. Both decoders (functions/emochat/pipeline/audio.py, stress_model/stress_model/audio.py) must
reject each one with its code, quickly and within a fixed memory bound.

Used by tests/unit, tests/model, tests/e2e and bench/: it imports neither decoder, only PyAV.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# The file a concat script names: a child decoding it runs in a folder that holds it, so a decoder
# that follows the script reads it (and returns its audio) instead of refusing.
CONCAT_VICTIM = "victim.wav"


def _tone(samples: int, rate: int, channels: int = 1) -> np.ndarray:
    """Packed s16 samples, shape (1, samples × channels), as PyAV's packed from_ndarray wants."""
    t = np.arange(samples) / max(rate, 1)
    mono = (0.3 * np.sin(2 * np.pi * 220.0 * t) * 32767).astype(np.int16)
    return np.repeat(mono, channels).reshape(1, -1)


def _encoded(
    container_format: str,
    codec: str,
    rate: int,
    samples: int,
    frame_samples: int = 1024,
    channels: int = 1,
    **stream_options: int,
) -> bytes:
    """`samples` of tone encoded with one of FFmpeg's own encoders, `frame_samples` per frame."""
    layout = {1: "mono", 2: "stereo"}[channels]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, **stream_options)
        for start in range(0, samples, frame_samples):
            size = min(frame_samples, samples - start)
            frame = av.AudioFrame.from_ndarray(_tone(size, rate, channels), format="s16", layout=layout)
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def mkv_pcm(rate: int, samples: int, channels: int = 1, packet_samples: int | None = None) -> bytes:
    """Matroska with PCM in blocks of `packet_samples` (default: ONE block of all `samples`), so the
    rate and the packet size are what we say."""
    return _encoded("matroska", "pcm_s16le", rate, samples, packet_samples or samples, channels)


def wav(rate: int, channels: int, frames: int, format_tag: int = 1, bits: int = 16) -> bytes:
    """A WAV file built by hand, so that any rate, channel count or format tag can be declared."""
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block_align, block_align, bits)
    data = _tone(frames, rate, channels).tobytes()[: frames * block_align]
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def declaring(data: bytes, seconds: float) -> bytes:
    """The Matroska file with its Segment Duration replaced: a header that says what we want."""
    patched = bytearray(data)
    duration_id = b"\x44\x89\x88"  # EBML id of Duration, then "an 8-byte float follows"
    at = patched.index(duration_id) + len(duration_id)
    patched[at : at + 8] = struct.pack(">d", seconds * 1000.0)  # in TimestampScale units (1 ms)
    return bytes(patched)


def claims_hours() -> bytes:
    """Two seconds of 16 kHz PCM in Matroska whose header says four hours."""
    return declaring(mkv_pcm(16_000, 32_000), 4 * 3600)


def alac_claiming_frames(frame_samples: int, channels: int) -> bytes:
    """ALAC in CAF whose magic cookie declares `frame_samples` per frame and `channels`: FFmpeg's
    decoder allocates buffers of that size per channel when it is opened, before any frame."""
    data = bytearray(_encoded("caf", "alac", 44_100, 44_100, frame_samples=4096))
    config = data.index(b"alac\x00\x00\x00\x00", data.index(b"kuki")) + 8  # ALACSpecificConfig
    data[config : config + 4] = struct.pack(">I", frame_samples)  # frameLength
    data[config + 9] = channels  # numChannels
    return bytes(data)


def concat_script() -> bytes:
    """An ffconcat script (37 bytes): a decoder that probes it opens CONCAT_VICTIM from its cwd."""
    return f"ffconcat version 1.0\nfile {CONCAT_VICTIM}\n".encode()


@dataclass(frozen=True)
class Hostile:
    make: Callable[[], bytes]
    code: str  # the error code both decoders must reject it with
    why: str


HOSTILE: dict[str, Hostile] = {
    "rate_1hz_one_packet": Hostile(
        lambda: mkv_pcm(1, 16_000), "unsupported_sample_rate", "1 Hz PCM, one 16,000-sample packet: 4.4 h"
    ),
    "rate_384khz": Hostile(lambda: wav(384_000, 1, 192_000), "unsupported_sample_rate", "384 kHz WAV"),
    "channels_64": Hostile(lambda: wav(16_000, 64, 8_000), "too_many_channels", "64-channel WAV"),
    "huge_packet": Hostile(
        lambda: mkv_pcm(48_000, 1_048_576), "audio_frame_too_large", "one 2 MiB PCM packet (21.8 s)"
    ),
    "claims_hours": Hostile(claims_hours, "audio_too_long", "Matroska header claiming 4 hours"),
    "alac_huge_frames": Hostile(
        lambda: alac_claiming_frames(4096 * 4096, 8),
        "audio_frame_too_large",
        "8-channel ALAC whose cookie declares 16,777,216-sample frames",
    ),
    "concat_script": Hostile(concat_script, "unsupported_container", "ffconcat script naming a local file"),
    "unknown_codec": Hostile(
        lambda: wav(16_000, 1, 16_000, format_tag=0x9999), "unsupported_codec", "WAV format tag 0x9999"
    ),
    "tiny_packets": Hostile(
        lambda: mkv_pcm(8_000, 25_000, packet_samples=1), "too_many_packets", "25,000 one-sample packets"
    ),
    "ac3_codec": Hostile(
        lambda: _encoded("matroska", "ac3", 48_000, 48_000),
        "unsupported_codec",
        "AC-3: decodable, not a phone's",
    ),
}


def typical_m4a() -> bytes:
    """What a phone sends: 20 s of AAC in m4a at 44.1 kHz (ffmpeg's aac encoder, mono, 64 kbit/s)."""
    return _encoded("ipod", "aac", 44_100, 20 * 44_100, bit_rate=64_000)


# ── Decoding in a child process: peak memory measured, address space capped ────────────────────────

# A child may map at most this much: today's 1 Hz file would otherwise take ~7 GB of a shared machine.
CHILD_ADDRESS_SPACE = 1536 * 2**20
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ChildDecode:
    code: str | None  # None: decoded
    message: str
    baseline_rss: int  # bytes, after imports and reading the input
    peak_rss: int  # the child's peak resident set (VmHWM: unlike ru_maxrss, not inherited), bytes

    @property
    def peak_growth(self) -> int:
        return self.peak_rss - self.baseline_rss


def decode_in_child(decoder: str, data: bytes, workdir: Path) -> ChildDecode:
    """Decode `data` with "functions" or "stress_model" in a fresh interpreter run in `workdir`."""
    source = workdir / "upload.bin"
    source.write_bytes(data)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, __file__, decoder, str(source)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if run.returncode != 0:
        raise AssertionError(f"the child crashed (rc {run.returncode}): {run.stderr[-2000:]}")
    report = json.loads(run.stdout.strip().splitlines()[-1])
    return ChildDecode(**report)


# Generous on purpose: the attack it guards against took ~6.9 GB; a typical message takes ~10 MB.
PEAK_GROWTH_BOUND = 200 * 2**20


def assert_refused_in_bounded_memory(decoder: str, name: str, workdir: Path) -> None:
    """The hostile file `name` is refused with its code, and decoding it stays under the bound."""
    case = HOSTILE[name]
    result = decode_in_child(decoder, case.make(), workdir)
    assert result.code == case.code, f"{case.why}: {result}"
    assert result.peak_growth < PEAK_GROWTH_BOUND, f"{case.why}: {result.peak_growth / 2**20:.0f} MiB"


def assert_typical_decodes_in_bounded_memory(decoder: str, workdir: Path) -> None:
    """The bound is not met by refusing everything: a phone's upload decodes under it."""
    result = decode_in_child(decoder, typical_m4a(), workdir)
    assert result.code is None, result
    assert result.peak_growth < PEAK_GROWTH_BOUND


def _child(decoder: str, source: str) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))
    sys.path[:0] = [str(REPO / "functions"), str(REPO / "stress_model")]
    data = Path(source).read_bytes()
    if decoder == "functions":
        from emochat.pipeline.audio import UndecodableAudio, decode_audio

        def run() -> None:
            decode_audio(data, max_duration_s=120.0)

        refused: type[Exception] = UndecodableAudio
    else:
        from stress_model.audio import BadAudioError, decode

        def run() -> None:
            decode(data, 16_000, max_seconds=30.0)

        refused = BadAudioError
    baseline = proc_status_bytes("VmRSS")
    code, message = None, "decoded"
    try:
        run()
    except refused as exc:
        code, message = getattr(exc, "code", "no_code"), str(exc)
    except BaseException as exc:  # reported, not raised: the test says what escaped the decoder
        code, message = f"unhandled:{type(exc).__name__}", str(exc)
    peak = proc_status_bytes("VmHWM")
    print(json.dumps({"code": code, "message": message, "baseline_rss": baseline, "peak_rss": peak}))


def proc_status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(f"{field}:"))
    return int(line.split()[1]) * 1024  # reported in kB


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
