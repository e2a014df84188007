"""Summary features of the teacher's physiological signals (ECG, EDA, respiration) with neurokit2.

Each modality becomes a short vector of the quantities stress is known to move: heart rate and its
variability, skin-conductance level and responses, breathing rate and depth. A modality that cannot
be processed (flat line, too short, sensor off) becomes NaNs, which the teacher treats as missing.
"""

from __future__ import annotations

import warnings

import neurokit2 as nk
import numpy as np
from scipy.signal import welch

PHYSIO_NAMES: dict[str, list[str]] = {
    "ecg": ["hr_mean", "hr_std", "sdnn_ms", "rmssd_ms", "hr_slope"],
    "eda": ["scl_mean", "scl_slope", "scr_per_min", "scr_amp_mean", "phasic_std"],
    "rsp": ["rate", "rate_std", "amp", "amp_cv"],
}


def _nan(mod: str) -> np.ndarray:
    return np.full(len(PHYSIO_NAMES[mod]), np.nan, np.float32)


def ecg_features(ecg: np.ndarray, sr: int) -> np.ndarray:
    try:
        _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=sr), sampling_rate=sr)
        peaks = np.asarray(info["ECG_R_Peaks"])
        rr = np.diff(peaks) / sr * 1000  # ms
        rr = rr[(rr > 300) & (rr < 2000)]  # 30-200 bpm; drops missed/extra beats
        if rr.size < 4:
            return _nan("ecg")
        hr = 60_000 / rr
        slope = np.polyfit(np.arange(hr.size), hr, 1)[0] * (hr.size / (len(ecg) / sr / 60))  # bpm per minute
        return np.array(
            [hr.mean(), hr.std(), rr.std(), np.sqrt(np.mean(np.diff(rr) ** 2)), slope], np.float32
        )
    except Exception:
        return _nan("ecg")


def eda_features(eda: np.ndarray, sr: int) -> np.ndarray:
    try:
        signals, info = nk.eda_process(eda, sampling_rate=sr)
        tonic = signals["EDA_Tonic"].to_numpy()
        phasic = signals["EDA_Phasic"].to_numpy()
        minutes = len(eda) / sr / 60
        amps = np.asarray(info.get("SCR_Amplitude", []), dtype=float)
        amps = amps[np.isfinite(amps)]
        slope = np.polyfit(np.arange(tonic.size) / sr / 60, tonic, 1)[0]
        return np.array(
            [
                tonic.mean(),
                slope,
                len(info["SCR_Peaks"]) / minutes,
                amps.mean() if amps.size else 0.0,
                phasic.std(),
            ],
            np.float32,
        )
    except Exception:
        return _nan("eda")


def rsp_features(rsp: np.ndarray, sr: int) -> np.ndarray:
    try:
        clean = np.asarray(nk.rsp_clean(rsp, sampling_rate=sr))
        # Breathing rate from the spectral peak in 6-42 breaths/min: unlike peak counting it still
        # works on short recordings with only a few breaths.
        n = min(clean.size, 64 * sr)
        f, pxx = welch(clean, fs=sr, nperseg=n, nfft=max(n, 2**16))  # zero-padded: finer peak location
        band = (f >= 0.1) & (f <= 0.7)
        rate = 60 * f[band][np.argmax(pxx[band])]
        amp, amp_cv, rate_std = 2 * np.sqrt(2) * clean.std(), np.nan, np.nan
        try:
            _, info = nk.rsp_peaks(clean, sampling_rate=sr)
            peaks, troughs = np.asarray(info["RSP_Peaks"]), np.asarray(info["RSP_Troughs"])
            if peaks.size >= 3:
                rate_std = np.std(60 * sr / np.diff(peaks))
            k = min(peaks.size, troughs.size)
            if k >= 2:
                depth = np.abs(clean[peaks[:k]] - clean[troughs[:k]])
                amp_cv = depth.std() / (depth.mean() + 1e-9)
        except Exception:  # too few breaths for peak detection: keep the spectral estimates
            pass
        return np.array([rate, rate_std, amp, amp_cv], np.float32)
    except Exception:
        return _nan("rsp")


def physio_features(signals: dict[str, np.ndarray] | None, sr: int) -> dict[str, np.ndarray]:
    """{"ecg": ..., "eda": ..., "rsp": ...} -> one feature vector per modality (NaN when missing)."""
    signals = signals or {}
    fns = {"ecg": ecg_features, "eda": eda_features, "rsp": rsp_features}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neurokit2 warns freely on short/noisy segments
        for mod, fn in fns.items():
            x = signals.get(mod)
            ok = x is not None and x.size > 5 * sr and np.nanstd(x) > 0
            out[mod] = fn(np.nan_to_num(x), sr) if ok else _nan(mod)
    return out
