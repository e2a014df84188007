"""All configuration in one dataclass; it is saved as config.json next to the weights.

Everything that changes what the model sees (sample rate, trimming, the encoder and its
parameters, the embedding size) lives in `FeatureConfig`, so inference always rebuilds the exact
feature extractor the model was trained with. That is the fix for the original model, whose
inference code silently used a different extractor than its training data.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

LABELS = ("not_stressed", "stressed")  # logit index 0, 1 (same order as the original StudentNet)
FORMAT = "emochat-stress/1"


@dataclass
class FeatureConfig:
    encoder: Literal["handcrafted", "stressid_hc", "wav2vec2"] = "handcrafted"
    sample_rate: int = 16_000
    trim_silence: bool = True
    trim_top_db: float = 35.0  # leading/trailing frames this far below the peak count as silence
    max_seconds: float = 30.0  # only the first max_seconds are scored: bounds latency and memory
    min_seconds: float = 0.5  # less sound than this (after trimming) is rejected as "too short"
    # handcrafted encoder
    n_fft: int = 1024
    hop_ms: float = 10.0
    fmin: float = 60.0
    fmax: float = 500.0
    pitch_method: Literal["yin", "pyin"] = "yin"  # yin: ~1 ms/s of audio; pyin: ~60 ms/s, better voicing
    # MFCCs off by default: on small data they mostly encode *who* is speaking (voice timbre), and the
    # demo model then misjudges unseen voices; prosody-only features generalise across speakers.
    n_mfcc: int = 0
    # stressid_hc encoder: StressID's published definition, plus one optional step of our own.
    # "lab_level" scales the VAD'd speech so its MFCC 0 mean equals loudness_mfcc0 (the lab
    # recordings' median): a phone records far louder than StressID's lab, and MFCC 0 follows level.
    loudness: Literal["none", "lab_level"] = "none"
    loudness_mfcc0: float = 0.0
    # wav2vec2-family encoder (Wav2Vec2, HuBERT, WavLM: anything transformers.AutoModel loads)
    w2v_model: str = ""  # local dir (absolute, or relative to the checkpoint dir) or hub id
    w2v_layer: int = -1  # index into hidden_states (0 = CNN features after projection, -1 = last)
    w2v_normalize: bool = True  # zero-mean/unit-variance waveform, as Wav2Vec2FeatureExtractor does
    dim: int = 0  # embedding size; filled in when the encoder is built


@dataclass
class Config:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    # StudentNet (audio embedding -> 2 logits)
    student_input_dim: int = 0  # >0: learned linear projection of the embedding first (e.g. 768 -> 512)
    student_hidden: int = 64
    student_feat_dim: int = 32  # the feature vector that distillation pulls toward the teacher's
    dropout: float = 0.3
    input_noise: float = 0.3  # std of Gaussian noise added to standardised student inputs in training
    # TeacherNet (physiology + optional video summary features -> 2 logits)
    modalities: tuple[str, ...] = ("ecg", "eda", "rsp", "video")
    teacher_inputs: dict[str, int] = field(default_factory=dict)  # modality -> input size; set at training
    teacher_hidden: int = 8  # per-modality encoder width (16 overfits the ~20 summary features)
    teacher_feat_dim: int = 32  # fused feature = distillation target
    # data
    physio_rate: int = 500  # StressID records ECG/EDA/RR at 500 Hz
    stress_threshold: float = 5.0  # stressed = self-reported stress >= 5 of 10 (StressID's binary label)
    video_features: str = "video_features.csv"  # optional per subject/task table at the dataset root
    # training
    seed: int = 0
    alpha: float = 1.0  # weight of the distillation MSE; see README "Choosing alpha"
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 32
    max_epochs: int = 300
    patience: int = 40  # early stopping on validation cross-entropy
    val_frac: float = 0.2  # fractions of *subjects*, never of recordings
    test_frac: float = 0.2
    loso_val_subjects: int = 2  # leave-one-subject-out: labelled subjects held out for early stopping
    loso_teacher_val_subjects: int = 3  # the same for the fold's teacher
    loso_seeds: int = 3  # models per fold (other validation subjects and initialisations), averaged
    balance_classes: bool = True  # class-weighted CE, so the minority class counts for UAR
    labels: tuple[str, ...] = LABELS

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **dataclasses.asdict(self)}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        d = {k: v for k, v in d.items() if k != "format"}
        known = {f.name for f in dataclasses.fields(cls)}
        feat_known = {f.name for f in dataclasses.fields(FeatureConfig)}
        feats = FeatureConfig(**{k: v for k, v in d.pop("features", {}).items() if k in feat_known})
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(features=feats, **kwargs)

    @classmethod
    def load(cls, path: Path) -> Config:
        return cls.from_dict(json.loads(Path(path).read_text()))
