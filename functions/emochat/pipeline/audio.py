"""Decode an uploaded voice file once, with PyAV (FFmpeg), into what validation and the services need.

Decoding proves the upload is real audio before any paid call, gives its true duration and level,
and yields a canonical 16 kHz mono WAV: a format every speech endpoint accepts, unlike the
container zoo phones record (caf, 3gp, raw aac).

FFmpeg is attack surface: it probes any of hundreds of formats, follows scripts that name other
files (ffconcat, HLS), and sizes its buffers from what a header declares. So every upload is opened
only through the demuxers our extensions need, with no way to open anything but the bytes given,
and every number that sizes an allocation (sample rate, channels, frame and packet size, duration)
is checked against a limit before the allocation it would size. The decoded length is capped in the
output domain. A refusal is an UndecodableAudio carrying its error code; nothing else escapes.

This file is mirrored by stress_model/stress_model/audio.py (the stress endpoint decodes the same
uploads, and neither package may import the other): keep the limits and the checks of both alike.
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass
from typing import NoReturn

import av
import numpy as np

SAMPLE_RATE = 16_000
DEFAULT_MAX_DURATION_S = 120.0

# Demuxers for the contract's extensions: m4a/mp4/3gp (mov), aac (adts), wav, webm/mkv (matroska),
# ogg/opus (ogg), mp3, caf. Probing may pick no other one (concat, hls, image2, ...).
ACCEPTED_CONTAINERS = ("mov", "mp4", "m4a", "3gp", "aac", "wav", "matroska", "webm", "ogg", "mp3", "caf")
# Codecs phones and browsers record, by FFmpeg decoder name.
PHONE_CODECS = frozenset(
    {"aac", "aac_fixed", "opus", "libopus", "vorbis", "libvorbis", "mp3", "mp3float", "flac", "alac"}
    | {"amrnb", "amrwb", "libopencore_amrnb", "libopencore_amrwb"}
    | {f"pcm_{kind}" for kind in ("u8", "s8", "mulaw", "alaw")}
    | {f"pcm_{kind}{end}" for kind in ("s16", "s24", "s32", "f32", "f64") for end in ("le", "be")}
)
# Decoders that av.open may run to fill in stream parameters, before _check_stream has seen them.
# Not ALAC: its decoder allocates buffers for the frame length its header declares (up to 16.7M
# samples × 8 channels × 3) when opened; a crafted 8-channel cookie took 515 MiB this way. ALAC
# streams get their parameters from the container, and PyAV opens the decoder after the checks.
PROBE_CODECS = PHONE_CODECS - {"alac"}
# 8 kHz (AMR-NB, telephony) up to 96 kHz (studio recorders). Below, resampling to 16 kHz multiplies
# the sample count: the 1 Hz attack turned 16,000 samples into 256 million.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 96_000
MAX_CHANNELS = 8
# Largest frame any accepted codec makes (FLAC's 65,535; AAC/Opus/Vorbis/MP3/AMR stay under 8,192);
# a decoded frame then holds at most 65,536 × 8 channels × 8 bytes = 4 MiB.
MAX_FRAME_SAMPLES = 65_536
# Demuxers cut PCM into packets of a few KiB; a single packet of megabytes is a crafted one.
MAX_PACKET_BYTES = 2**20
# Each packet costs ~0.1 ms of Python and FFmpeg calls whatever it holds: 200,000 one-sample packets
# took 19 s. 120 s of 20 ms Opus or AMR is 6,000 packets, of Vorbis 3,751, of PCM in wav/caf/mov
# under 2,000 (measured with ffmpeg-made files); 20,000 admits 10 ms Opus and refuses a crafted
# file of tiny packets within about two seconds.
MAX_PACKETS = 20_000


class UndecodableAudio(ValueError):
    """The bytes are not audio we accept to decode; `code` says why, for the message's error.code."""

    def __init__(self, message: str, code: str = "undecodable_audio", duration_ms: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.duration_ms = duration_ms  # what the file declares, when it was refused for its length


def _refuse(code: str, message: str, duration_ms: int | None = None) -> NoReturn:
    raise UndecodableAudio(message, code, duration_ms)


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32 mono in [-1, 1] at SAMPLE_RATE
    codec: str

    @property
    def duration_ms(self) -> int:
        return round(1000 * len(self.samples) / SAMPLE_RATE)

    @property
    def peak_dbfs(self) -> float:
        peak = float(np.max(np.abs(self.samples))) if len(self.samples) else 0.0
        return 20 * math.log10(peak) if peak > 0 else -math.inf

    def to_wav(self) -> bytes:
        pcm = (np.clip(self.samples, -1.0, 1.0) * 32767).astype("<i2")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(pcm.tobytes())
        return buffer.getvalue()


def _refuse_nested_open(url: str, flags: int, options: dict) -> NoReturn:
    # FFmpeg calls this when a demuxer wants another file or URL: the upload is the only input.
    raise PermissionError(f"opening {url!r} from inside an upload is not allowed")


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
        # EINVAL at open: FFmpeg recognised the bytes as a format outside the list (image, script, ...).
        _refuse(
            "unsupported_container",
            "The file is not in an accepted audio format (m4a, mp4, 3gp, aac, wav, webm, ogg, opus, "
            "mp3, caf).",
        )


def _declared_frame_samples(codec_context: av.AudioCodecContext) -> int:
    """The frame size the stream declares; for ALAC, the one its decoder allocates for at open."""
    declared = codec_context.frame_size or 0
    extradata = codec_context.extradata or b""
    if codec_context.name == "alac" and len(extradata) >= 24:
        # ALAC's magic cookie starts with frameLength, after a 12-byte atom header when it has one.
        at = 12 if len(extradata) >= 36 else 0
        declared = max(declared, int.from_bytes(extradata[at : at + 4], "big"))
    return declared


def _check_stream(container: av.container.InputContainer, max_duration_s: float) -> av.AudioStream:
    """The audio stream to decode, once everything it declares is within limits."""
    if not container.streams.audio:
        _refuse("undecodable_audio", "The file has no audio track.")
    stream = container.streams.audio[0]
    codec_context = stream.codec_context
    if codec_context is None or codec_context.name not in PHONE_CODECS:
        name = codec_context.name if codec_context is not None else "unknown"
        _refuse("unsupported_codec", f"The audio codec '{name}' is not one phones record.")
    if not MIN_SAMPLE_RATE <= codec_context.sample_rate <= MAX_SAMPLE_RATE:
        _refuse(
            "unsupported_sample_rate",
            f"The sample rate {codec_context.sample_rate} Hz is outside "
            f"{MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz.",
        )
    if not 1 <= codec_context.channels <= MAX_CHANNELS:
        _refuse(
            "too_many_channels", f"The file has {codec_context.channels} channels; at most {MAX_CHANNELS}."
        )
    if _declared_frame_samples(codec_context) > MAX_FRAME_SAMPLES:
        _refuse("audio_frame_too_large", "The file declares audio frames larger than any recorder makes.")
    declared_s = [container.duration / av.time_base if container.duration else 0.0]
    if stream.duration and stream.time_base:
        declared_s.append(float(stream.duration * stream.time_base))
    if max(declared_s) > max_duration_s + 1:
        _refuse(
            "audio_too_long",
            f"The recording is {max(declared_s):.1f} s; the limit is {max_duration_s:.0f} s.",
            duration_ms=round(1000 * max(declared_s)),
        )
    return stream


def _check_frame(frame: av.AudioFrame) -> None:
    """Each decoded frame within the same limits: a decoder may output another rate or layout than
    the container declared (HE-AAC doubles the rate, parametric stereo adds a channel)."""
    if not MIN_SAMPLE_RATE <= frame.sample_rate <= MAX_SAMPLE_RATE:
        _refuse("unsupported_sample_rate", f"The audio switches to a sample rate of {frame.sample_rate} Hz.")
    if frame.layout.nb_channels > MAX_CHANNELS:
        _refuse("too_many_channels", f"The audio switches to {frame.layout.nb_channels} channels.")
    if frame.samples > MAX_FRAME_SAMPLES:
        _refuse("audio_frame_too_large", f"An audio frame holds {frame.samples} samples.")


def _resample_into(
    chunks: list[np.ndarray], resampler: av.AudioResampler, frame: av.AudioFrame | None, room: int
) -> int:
    """Append `frame` (None: the resampler's remainder) at 16 kHz mono, at most `room` samples."""
    added = 0
    for out in resampler.resample(frame):
        chunks.append(out.to_ndarray().reshape(-1)[: room - added])
        added += len(chunks[-1])
    return added


def _decode(data: bytes, max_duration_s: float) -> DecodedAudio:
    cap = int((max_duration_s + 1) * SAMPLE_RATE)  # a little past the limit: "too long" is then decided
    chunks: list[np.ndarray] = []
    total = 0
    with _open(data) as container:
        stream = _check_stream(container, max_duration_s)
        codec = stream.codec_context.name
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for count, packet in enumerate(container.demux(stream)):
            if count >= MAX_PACKETS:
                _refuse("too_many_packets", f"The file has more than {MAX_PACKETS} audio packets.")
            if packet.size > MAX_PACKET_BYTES:
                _refuse("audio_frame_too_large", f"An audio packet holds {packet.size} bytes.")
            for frame in packet.decode():
                _check_frame(frame)
                total += _resample_into(chunks, resampler, frame, cap - total)
            if total >= cap:
                break
        else:  # every packet decoded: flush the resampler's delay line
            total += _resample_into(chunks, resampler, None, cap - total)
    if total == 0:
        _refuse("undecodable_audio", "The file decodes to no audio samples.")
    return DecodedAudio(samples=np.concatenate(chunks).astype(np.float32, copy=False), codec=codec)


def decode_audio(data: bytes, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> DecodedAudio:
    """Decode an accepted container/codec to 16 kHz mono float32, at most `max_duration_s` + 1 s.

    Decoding stops a little past `max_duration_s` so an hour-long upload costs no more than the
    limit it is about to be rejected for; the returned duration then exceeds the limit.
    Raises UndecodableAudio (with its `code`) for anything refused or failing.
    """
    if not data:
        _refuse("undecodable_audio", "The file is empty.")
    try:
        return _decode(data, max_duration_s)
    except UndecodableAudio:
        raise
    except Exception as exc:  # FFmpeg's errors, and anything unforeseen: bad input, never a crash
        raise UndecodableAudio(f"The file is not decodable audio ({type(exc).__name__}).") from exc
