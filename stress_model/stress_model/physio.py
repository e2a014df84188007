"""Summary features of the teacher's physiological signals (ECG, EDA, respiration) with neurokit2.

Each modality becomes a short vector of the quantities stress is known to move: heart rate and its
variability, skin-conductance level and responses, breathing rate and depth. A modality that cannot
be processed (flat line, too short, sensor off) becomes NaNs, which the teacher treats as missing.
"""

from __future__ import annotations

import warnings

import neurokit2 as nk
import numpy as np

PHYSIO_NAMES: dict[str, list[str]] = {
    "ecg": ["hr_mean", "hr_std", "sdnn_ms", "rmssd_ms", "hr_slope"],
    "eda": ["scl_mean", "scl_slope", "scr_per_min", "scr_amp_mean", "phasic_std"],
    "rsp": ["rate_mean", "rate_std", "amp_mean", "amp_cv"],
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
        signals, _ = nk.rsp_process(rsp, sampling_rate=sr)
        rate = signals["RSP_Rate"].to_numpy()
        amp = signals["RSP_Amplitude"].to_numpy()
        return np.array(
            [np.nanmean(rate), np.nanstd(rate), np.nanmean(amp), np.nanstd(amp) / (np.nanmean(amp) + 1e-9)],
            np.float32,
        )
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
