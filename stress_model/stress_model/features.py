"""Utterance embeddings: a fixed-size vector per recording, from a configurable encoder.

- "wav2vec2": any transformers wav2vec2-family checkpoint; hidden states of one layer, mean-pooled
  over time. Production choice when a pretrained checkpoint is available.
- "stressid_hc": StressID's 140 published handcrafted values (its energy VAD, then MFCC and spectral
  statistics), the columns of its HCfeatures.csv: what the served checkpoint was trained on.
- "handcrafted": prosodic and spectral statistics (pitch, energy, voicing, spectrum, speaking rate).
  Needs no pretrained weights (the synthetic-data checkpoint used it).

All take 16 kHz mono float32 (see audio.py) and return float32 of shape (cfg.dim,). Features are
not normalised here: the mean/std from training are buffers of StudentNet, saved with its weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.ndimage import median_filter

from stress_model.config import FeatureConfig

Encoder = Callable[[np.ndarray], np.ndarray]

_SEMITONE_REF_HZ = 55.0


def handcrafted_names(cfg: FeatureConfig) -> list[str]:
    names = [f"f0_{s}" for s in ("median", "mean", "std", "p10", "p90", "range", "abs_delta", "slope")]
    names += [f"energy_{s}" for s in ("mean_db", "std_db", "range_db", "abs_delta_db")]
    names += ["voiced_frac", "voiced_frac_of_active", "active_frac", "voiced_runs_per_s", "voiced_run_s"]
    names += ["onset_rate", "envelope_mod_hz"]
    names += ["centroid_mean", "centroid_std", "bandwidth_mean", "rolloff_mean", "flatness_mean", "zcr_mean"]
    names += ["hf_ratio_db"]
    names += [f"mfcc{i}_mean" for i in range(cfg.n_mfcc)] + [f"mfcc{i}_std" for i in range(cfg.n_mfcc)]
    return names


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of consecutive True runs."""
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[::2]


def _pitch_stats(st: np.ndarray) -> tuple[float, ...]:
    """Robust statistics of a pitch contour in semitones (NaN when there is too little voicing)."""
    if st.size < 5:
        return (np.nan,) * 8
    st = median_filter(st, size=5, mode="nearest")  # removes isolated octave jumps of the pitch tracker
    p10, p50, p90 = np.percentile(st, [10, 50, 90])
    robust_std = 1.4826 * np.median(np.abs(st - p50))  # MAD: not inflated by the few errors left
    slope = float(np.polyfit(np.arange(st.size, dtype=np.float64), st, 1)[0])
    return (p50, st.mean(), robust_std, p10, p90, p90 - p10, np.abs(np.diff(st)).mean(), slope)


def handcrafted(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Prosodic + spectral summary of one utterance (names: `handcrafted_names`)."""
    sr, n_fft = cfg.sample_rate, cfg.n_fft
    hop = int(sr * cfg.hop_ms / 1000)
    frames_per_s = sr / hop
    y = wave.astype(np.float32)
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))

    spec = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    rms = librosa.feature.rms(S=spec, frame_length=n_fft)[0]
    db = 20 * np.log10(rms + 1e-9)
    # Floor at 60 dB below the peak: digital silence in clean audio (e.g. straight from a TTS engine)
    # would otherwise sit at -180 dB and dominate every energy statistic. With the floor, clean and
    # noisy recordings of the same speech give nearly the same features.
    db = np.maximum(db, db.max() - 60)
    active = db > db.max() - 30  # frames with speech energy (within 30 dB of the loudest)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[0]
    flat = librosa.feature.spectral_flatness(S=spec)[0]
    n = min(spec.shape[1], zcr.size)
    spec, db, active, zcr, flat = spec[:, :n], db[:n], active[:n], zcr[:n], flat[:n]

    if cfg.pitch_method == "pyin":
        f0, voiced, _ = librosa.pyin(
            y, fmin=cfg.fmin, fmax=cfg.fmax, sr=sr, frame_length=n_fft, hop_length=hop
        )
        f0, voiced = f0[:n], voiced[:n] & active
    else:
        f0 = librosa.yin(y, fmin=cfg.fmin, fmax=cfg.fmax, sr=sr, frame_length=n_fft, hop_length=hop)[:n]
        # yin has no voicing decision: call a frame voiced when it is loud, periodic-looking
        # (low zero-crossing rate, non-flat spectrum) and its f0 is not pinned to a search bound.
        voiced = active & (zcr < 0.25) & (flat < 0.3) & (f0 > cfg.fmin * 1.05) & (f0 < cfg.fmax * 0.95)
    st = 12 * np.log2(f0[voiced] / _SEMITONE_REF_HZ) if voiced.any() else np.zeros(0)
    pitch = list(_pitch_stats(st))
    pitch[-1] *= frames_per_s  # slope per second, not per frame: comparable across clip lengths

    a_db = db[active]
    p10, p90 = np.percentile(a_db, [10, 90])
    energy = (a_db.mean(), a_db.std(), p90 - p10, np.abs(np.diff(a_db)).mean() if a_db.size > 1 else 0.0)

    runs = _runs(voiced)
    seconds = n / frames_per_s
    voicing = (
        voiced.mean(),
        voiced.sum() / max(active.sum(), 1),
        active.mean(),
        runs.size / seconds,
        runs.mean() / frames_per_s if runs.size else 0.0,
    )

    # Speaking-rate proxies: onsets per second of speech, and the dominant syllable-rate
    # modulation (2-10 Hz) of the energy envelope.
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=spec**2, sr=sr), ref=np.max, top_db=60)
    onset_env = librosa.onset.onset_strength(S=mel_db, sr=sr)
    onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr, hop_length=hop)
    onset_rate = len(onsets) / max(active.sum() / frames_per_s, 1e-3)
    env = 10 ** (db / 20)
    env = env - env.mean()
    nfft_env = max(1024, env.size)
    mod = np.abs(np.fft.rfft(env, n=nfft_env))
    freqs = np.fft.rfftfreq(nfft_env, d=1 / frames_per_s)
    band = (freqs >= 2) & (freqs <= 10)
    mod_hz = float(freqs[band][np.argmax(mod[band])])

    sa = spec[:, active]
    centroid = librosa.feature.spectral_centroid(S=sa, sr=sr)[0]
    bandwidth = librosa.feature.spectral_bandwidth(S=sa, sr=sr)[0]
    rolloff = librosa.feature.spectral_rolloff(S=sa, sr=sr)[0]
    freqs_bin = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    power = (sa**2).sum(axis=1)
    hf_ratio = 10 * np.log10(
        (power[freqs_bin >= 1000].sum() + 1e-10) / (power[freqs_bin < 1000].sum() + 1e-10)
    )
    spectral = (
        centroid.mean() / 1000,
        centroid.std() / 1000,
        bandwidth.mean() / 1000,
        rolloff.mean() / 1000,
        flat[active].mean(),
        zcr[active].mean(),
        hf_ratio,
    )

    vec = [*pitch, *energy, *voicing, onset_rate, mod_hz, *spectral]
    if cfg.n_mfcc:  # MFCCs of speech frames, from a peak-referenced log-mel (c0 does not track gain)
        mfcc = librosa.feature.mfcc(S=mel_db[:, active], n_mfcc=cfg.n_mfcc)
        vec += [*mfcc.mean(axis=1), *mfcc.std(axis=1)]
    return np.array(vec, dtype=np.float32)


class Wav2Vec2Encoder:
    """Mean-pooled hidden states of one layer of a transformers wav2vec2-family model (CPU)."""

    def __init__(self, cfg: FeatureConfig, base_dir: Path | None = None) -> None:
        from transformers import AutoModel  # imported here: the handcrafted path never pays for it

        name = cfg.w2v_model
        if not name:
            raise ValueError("features.w2v_model is empty: give a local checkpoint dir or a hub id")
        local = Path(name) if Path(name).is_absolute() or base_dir is None else Path(base_dir) / name
        self.model = AutoModel.from_pretrained(str(local) if local.exists() else name).eval()
        self.layer, self.normalize = cfg.w2v_layer, cfg.w2v_normalize
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def __call__(self, wave: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
        if self.normalize:
            x = (x - x.mean()) / torch.sqrt(x.var() + 1e-7)
        hidden = self.model(x, output_hidden_states=True).hidden_states[self.layer]
        return hidden.mean(dim=1)[0].float().numpy()


# ------------------------------------------------------------------ StressID handcrafted (stressid_hc)


def _stressid_hc_names() -> list[str]:
    names = []
    for kind in ("", "_delta", "_delta2"):
        for stat in ("mean", "std"):
            names += [f"mfcc{i}{kind}_{stat}" for i in range(13)]
    blocks = {
        "centroid": 1,
        "bandwidth": 1,
        "flatness": 1,
        "contrast": 7,
        "rolloff": 1,
        "tonnetz": 6,
        "zcr": 1,
        "tempogram_ratio": 13,
    }
    for name, n in blocks.items():
        for stat in ("mean", "std"):
            names += [f"{name}_{stat}" if n == 1 else f"{name}{i}_{stat}" for i in range(n)]
    return names


STRESSID_HC_NAMES: list[str] = _stressid_hc_names()


def speech_frames(
    wave: np.ndarray,
    sr: int = 16_000,
    frame_ms: float = 20.0,
    hop_ms: float = 5.0,
    below_max_db: float = 40.0,
    floor_db: float = -55.0,
    shortest_ms: float = 50.0,
) -> np.ndarray:
    """StressID's energy VAD: 1 per speech frame (frame k starts at sample k * hop).

    Frame level = 20 log10(std of the frame); speech = within `below_max_db` of the loudest frame and
    above `floor_db`. Then runs shorter than `shortest_ms` are smoothed: short pauses become speech
    first, then short bursts become silence. The last frame is zero-padded.
    """
    fl, hop = int(frame_ms / 1000 * sr), int(hop_ms / 1000 * sr)
    frames = _frames(wave, fl, hop)
    level = 20 * np.log10(frames.std(axis=1) + np.finfo(np.float32).eps)
    speech = (level > level.max() - below_max_db) & (level > floor_db)
    min_run = shortest_ms * sr / 1000 / hop
    speech = ~_drop_short_runs(~speech, min_run)  # fill short pauses
    return _drop_short_runs(speech, min_run)  # then drop short bursts


def _frames(wave: np.ndarray, fl: int, hop: int) -> np.ndarray:
    n = 1 + max(0, -(-(wave.size - fl) // hop))  # frames starting at 0, hop, ... covering the signal
    padded = np.zeros((n - 1) * hop + fl, dtype=wave.dtype)
    padded[: wave.size] = wave
    return np.lib.stride_tricks.sliding_window_view(padded, fl)[::hop]


def _drop_short_runs(mask: np.ndarray, min_run: float) -> np.ndarray:
    """mask with its runs of True shorter than min_run frames set to False."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    out = mask.copy()
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start < min_run:
            out[start:end] = False
    return out


def speech_only(
    wave: np.ndarray, sr: int = 16_000, frame_ms: float = 20.0, hop_ms: float = 5.0
) -> np.ndarray:
    """The speech frames, Hann-windowed and overlap-added back to back at the hop (silence removed)."""
    fl, hop = int(frame_ms / 1000 * sr), int(hop_ms / 1000 * sr)
    wave = np.asarray(wave, dtype=np.float32)
    kept = _frames(wave, fl, hop)[speech_frames(wave, sr, frame_ms, hop_ms)]
    window = np.hanning(fl).astype(np.float32)
    out = np.zeros(len(kept) * hop + fl, dtype=np.float32)
    for i, frame in enumerate(kept):
        out[i * hop : i * hop + fl] += frame * window
    return out


def mfcc0_mean(speech: np.ndarray, sr: int = 16_000) -> float:
    """Mean of MFCC 0 (the level term): what absolute loudness moves, and nothing else of the 140."""
    return float(librosa.feature.mfcc(y=speech, sr=sr, n_mfcc=1)[0].mean())


# MFCC 0 = sqrt(n_mels) * mean log-mel level (orthonormal DCT, librosa's 128 mel bands), so a gain of
# g dB moves it by sqrt(128) * g; the other 139 values do not move (relative or scale-free measures).
MFCC0_PER_DB = float(np.sqrt(128))
MIN_SPEECH_SAMPLES = 4608  # 9 MFCC frames at librosa's hop of 512: the delta filter's width


def stressid_hc(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """StressID's 140 handcrafted values, in HCfeatures.csv's column order (STRESSID_HC_NAMES).

    VAD (speech_only), then [optional loudness step], then librosa with its defaults: mean and std
    over frames of 13 MFCCs, their deltas and delta-deltas, spectral centroid, bandwidth, flatness,
    contrast (7 bands), 85 % rolloff, tonnetz of the harmonic part, zero-crossing rate and tempogram
    ratio (13 factors).
    """
    sr = cfg.sample_rate
    y = speech_only(wave, sr)
    if y.size < MIN_SPEECH_SAMPLES:
        from stress_model.audio import BadAudioError

        raise BadAudioError(f"too little speech: {y.size / sr:.2f} s after removing silence")
    if cfg.loudness == "lab_level":
        # A separate step, not StressID's definition: scale the speech so its MFCC 0 mean sits at the
        # lab recordings' median (cfg.loudness_mfcc0), i.e. the recording level no longer counts.
        y = y * np.float32(10 ** ((cfg.loudness_mfcc0 - mfcc0_mean(y, sr)) / MFCC0_PER_DB / 20))
    # float64 from here: the values equal float32 ones to rounding (checked against StressID's own
    # scripts: within 3e-5 relative), and it stays off librosa's float32 pitch-tuning kernel, whose
    # numba on-disk cache was seen corrupted in a shared environment here (segfault inside tonnetz).
    y = y.astype(np.float64)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
    d1 = librosa.feature.delta(mfcc)
    d2 = librosa.feature.delta(d1)
    spec = np.abs(librosa.stft(y))
    with warnings.catch_warnings():
        # the CQT behind tonnetz halves the signal per octave and warns on short clips: expected
        warnings.simplefilter("ignore", UserWarning)
        tonnetz = librosa.feature.tonnetz(y=librosa.effects.harmonic(y), sr=sr)
    blocks = [
        mfcc,
        d1,
        d2,
        librosa.feature.spectral_centroid(y=y, sr=sr),
        librosa.feature.spectral_bandwidth(y=y, sr=sr),
        librosa.feature.spectral_flatness(y=y),
        librosa.feature.spectral_contrast(S=spec, sr=sr),
        librosa.feature.spectral_rolloff(y=y, sr=sr, roll_percent=0.85),
        tonnetz,
        librosa.feature.zero_crossing_rate(y),
        librosa.feature.tempogram_ratio(tg=librosa.feature.tempogram(y=y, sr=sr), sr=sr),
    ]
    out = np.concatenate([np.concatenate([b.mean(axis=1), b.std(axis=1)]) for b in blocks])
    return out.astype(np.float32)


def build_encoder(cfg: FeatureConfig, base_dir: Path | None = None) -> Encoder:
    """Build the encoder named in the config and record its output size in cfg.dim."""
    if cfg.encoder == "handcrafted":
        dim = len(handcrafted_names(cfg))
        if cfg.dim not in (0, dim):
            raise ValueError(f"config says dim={cfg.dim} but the handcrafted encoder gives {dim}")
        cfg.dim = dim
        return lambda wave: handcrafted(wave, cfg)
    if cfg.encoder == "stressid_hc":
        if cfg.dim not in (0, len(STRESSID_HC_NAMES)):
            raise ValueError(f"config says dim={cfg.dim} but stressid_hc gives {len(STRESSID_HC_NAMES)}")
        if cfg.loudness not in ("none", "lab_level"):
            raise ValueError(f"unknown loudness step {cfg.loudness!r} (none | lab_level)")
        cfg.dim = len(STRESSID_HC_NAMES)
        return lambda wave: stressid_hc(wave, cfg)
    if cfg.encoder == "wav2vec2":
        enc = Wav2Vec2Encoder(cfg, base_dir)
        if cfg.dim not in (0, enc.dim):
            raise ValueError(f"config says dim={cfg.dim} but {cfg.w2v_model} has hidden size {enc.dim}")
        cfg.dim = enc.dim
        return enc
    raise ValueError(f"unknown encoder {cfg.encoder!r}")
