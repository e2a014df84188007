"""Decode the audio containers phones record to 16 kHz mono float32, then trim and check it.

PyAV (bundled FFmpeg) reads m4a/AAC, webm/opus, ogg, mp3, wav, 3gp, caf from bytes in memory.
Resampling uses FFmpeg's own resampler (`av.AudioResampler`) from whatever rate the file has,
so a 44.1 kHz or 8 kHz upload reaches the encoder at 16 kHz. (The original inference code
"resampled" 16 kHz -> 16 kHz, i.e. never, and fed other rates to the model as if they were 16 kHz.)

The endpoint decodes whatever a caller posts, so FFmpeg is attack surface here as in the backend:
only the contract's demuxers, no way to open anything but the bytes given (no ffconcat, no file or
network protocols), only the codecs phones record, and every number that sizes an allocation
(sample rate, channels, frame and packet size, declared duration) checked before it is used; the
output is capped at `max_seconds`. Every refusal is a BadAudioError with a `code`.

This mirrors functions/emochat/audio.py (neither package may import the other): keep the limits and
the checks of both alike.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NoReturn

import av
import librosa
import numpy as np

from stress_model.config import FeatureConfig

# The limits and allow-lists of functions/emochat/audio.py, whose comments say why each is what it is.
ACCEPTED_CONTAINERS = ("mov", "mp4", "m4a", "3gp", "aac", "wav", "matroska", "webm", "ogg", "mp3", "caf")
PHONE_CODECS = frozenset(
    {"aac", "aac_fixed", "opus", "libopus", "vorbis", "libvorbis", "mp3", "mp3float", "flac", "alac"}
    | {"amrnb", "amrwb", "libopencore_amrnb", "libopencore_amrwb"}
    | {f"pcm_{kind}" for kind in ("u8", "s8", "mulaw", "alaw")}
    | {f"pcm_{kind}{end}" for kind in ("s16", "s24", "s32", "f32", "f64") for end in ("le", "be")}
)
PROBE_CODECS = PHONE_CODECS - {"alac"}  # ALAC's decoder allocates by its header when opened
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 96_000
MAX_CHANNELS = 8
MAX_FRAME_SAMPLES = 65_536
MAX_PACKET_BYTES = 2**20
MAX_PACKETS = 20_000
# The backend accepts voice messages of up to 120 s; a posted file declaring more is refused.
MAX_DECLARED_SECONDS = 120.0


class BadAudioError(ValueError):
    """The input cannot be scored: refused, undecodable, empty, silent or too short. One-line message;
    `code` names the reason as the backend's error codes do."""

    def __init__(self, message: str, code: str = "undecodable_audio") -> None:
        super().__init__(message)
        self.code = code


def _refuse(code: str, message: str) -> NoReturn:
    raise BadAudioError(message, code)


def _refuse_nested_open(url: str, flags: int, options: dict) -> NoReturn:
    raise PermissionError(f"opening {url!r} from inside an input is not allowed")


def _open(data: bytes) -> av.container.InputContainer:
    try:
        return av.open(
            io.BytesIO(data),
            mode="r",
            container_options={
                "format_whitelist": ",".join(ACCEPTED_CONTAINERS),
                "protocol_whitelist": "none",
                "codec_whitelist": ",".join(sorted(PROBE_CODECS)),
            },
            io_open=_refuse_nested_open,
        )
    except av.error.ArgumentError:
        _refuse("unsupported_container", "input is not in an accepted audio container")


def _declared_frame_samples(codec_context: av.AudioCodecContext) -> int:
    declared = codec_context.frame_size or 0
    extradata = codec_context.extradata or b""
    if codec_context.name == "alac" and len(extradata) >= 24:  # ALAC cookie: frameLength first
        at = 12 if len(extradata) >= 36 else 0
        declared = max(declared, int.from_bytes(extradata[at : at + 4], "big"))
    return declared


def _check_stream(
    container: av.container.InputContainer, max_declared_seconds: float | None
) -> av.AudioStream:
    if not container.streams.audio:
        _refuse("undecodable_audio", "no audio stream in input")
    stream = container.streams.audio[0]
    codec_context = stream.codec_context
    if codec_context is None or codec_context.name not in PHONE_CODECS:
        _refuse(
            "unsupported_codec",
            f"audio codec {codec_context.name if codec_context else 'unknown'!r} is not accepted",
        )
    if not MIN_SAMPLE_RATE <= codec_context.sample_rate <= MAX_SAMPLE_RATE:
        _refuse("unsupported_sample_rate", f"sample rate {codec_context.sample_rate} Hz is not accepted")
    if not 1 <= codec_context.channels <= MAX_CHANNELS:
        _refuse("too_many_channels", f"{codec_context.channels} channels; at most {MAX_CHANNELS}")
    if _declared_frame_samples(codec_context) > MAX_FRAME_SAMPLES:
        _refuse("audio_frame_too_large", "input declares audio frames larger than any recorder makes")
    declared = [container.duration / av.time_base if container.duration else 0.0]
    if stream.duration and stream.time_base:
        declared.append(float(stream.duration * stream.time_base))
    if max_declared_seconds is not None and max(declared) > max_declared_seconds + 1:
        _refuse(
            "audio_too_long",
            f"input declares {max(declared):.0f} s of audio; at most {max_declared_seconds:g} s",
        )
    return stream


def _check_frame(frame: av.AudioFrame) -> None:
    if not MIN_SAMPLE_RATE <= frame.sample_rate <= MAX_SAMPLE_RATE:
        _refuse("unsupported_sample_rate", f"audio switches to a sample rate of {frame.sample_rate} Hz")
    if frame.layout.nb_channels > MAX_CHANNELS:
        _refuse("too_many_channels", f"audio switches to {frame.layout.nb_channels} channels")
    if frame.samples > MAX_FRAME_SAMPLES:
        _refuse("audio_frame_too_large", f"an audio frame holds {frame.samples} samples")


def _resample_into(
    chunks: list[np.ndarray], resampler: av.AudioResampler, frame: av.AudioFrame | None, room: int
) -> int:
    """Append `frame` (None: the resampler's remainder) resampled, at most `room` samples."""
    added = 0
    for out in resampler.resample(frame):
        chunks.append(out.to_ndarray().reshape(-1)[: room - added])
        added += len(chunks[-1])
    return added


def _decode(data: bytes, sample_rate: int, limit: int, max_declared_seconds: float | None) -> np.ndarray:
    chunks: list[np.ndarray] = []
    n = 0
    with _open(data) as container:
        stream = _check_stream(container, max_declared_seconds)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for count, packet in enumerate(container.demux(stream)):
            if count >= MAX_PACKETS:
                _refuse("too_many_packets", f"more than {MAX_PACKETS} audio packets")
            if packet.size > MAX_PACKET_BYTES:
                _refuse("audio_frame_too_large", f"an audio packet holds {packet.size} bytes")
            for frame in packet.decode():
                _check_frame(frame)
                frame.pts = None  # only samples in order matter; odd timestamps make the resampler fail
                n += _resample_into(chunks, resampler, frame, limit - n)
            if n >= limit:
                break
        else:  # every packet decoded: flush the resampler's delay line
            n += _resample_into(chunks, resampler, None, limit - n)
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def decode(
    source: bytes | str | Path,
    sample_rate: int = 16_000,
    max_seconds: float | None = None,
    max_declared_seconds: float | None = MAX_DECLARED_SECONDS,
) -> np.ndarray:
    """Decode bytes (or a file's bytes) to mono float32 at `sample_rate`; stop after `max_seconds`
    (at most MAX_DECLARED_SECONDS + 1 s when None). A file declaring more than `max_declared_seconds`
    is refused; training on a local dataset's long recordings passes None and keeps the first
    `max_seconds`."""
    data = bytes(source) if isinstance(source, bytes | bytearray | memoryview) else Path(source).read_bytes()
    if not data:
        raise BadAudioError("empty input: no audio bytes received")
    limit = int((max_seconds or MAX_DECLARED_SECONDS + 1) * sample_rate)
    try:
        wave = _decode(data, sample_rate, limit, max_declared_seconds)
    except BadAudioError:
        raise
    except Exception as e:  # any FFmpeg/container failure on user input is a bad-input error
        raise BadAudioError(f"could not decode audio: {type(e).__name__}") from e
    if wave.size == 0:
        raise BadAudioError("no audio samples could be decoded")
    return wave


def prepare(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Cap, trim leading/trailing silence and reject what cannot be scored."""
    wave = np.nan_to_num(wave[: int(cfg.max_seconds * cfg.sample_rate)])
    if wave.size == 0 or float(np.max(np.abs(wave))) < 1e-4:
        raise BadAudioError("audio is silent")
    if cfg.trim_silence:
        wave, _ = librosa.effects.trim(wave, top_db=cfg.trim_top_db, frame_length=1024, hop_length=256)
    seconds = wave.size / cfg.sample_rate
    if seconds < cfg.min_seconds:
        raise BadAudioError(f"audio too short: {seconds:.2f} s of sound, need at least {cfg.min_seconds:g} s")
    return wave.astype(np.float32)


def load(source: bytes | str | Path, cfg: FeatureConfig) -> np.ndarray:
    """decode + prepare: what the handler (bytes) and the training code (files) both use.

    Posted bytes are refused past MAX_DECLARED_SECONDS; a dataset's files on disk may be long
    recordings of which the first `cfg.max_seconds` are used (decoding is capped there either way).
    """
    declared = MAX_DECLARED_SECONDS if isinstance(source, bytes | bytearray | memoryview) else None
    return prepare(decode(source, cfg.sample_rate, cfg.max_seconds, declared), cfg)
