"""Assemble a deployable Hugging Face model repository from a checkpoint.

HF Inference Endpoints import `handler.py` from the root of the model repository and install its
`requirements.txt`. The bundle therefore holds:

    handler.py            thin root handler: puts the bundle dir on sys.path, reuses the package's
    stress_model/         vendored package (inference modules only, no training CLI dependencies)
    requirements.txt      inference-only pins
    config.json, model.safetensors, README.md (model card), encoder/ (a local wav2vec2 checkpoint)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stress_model.config import Config

PACKAGE_DIR = Path(__file__).resolve().parent
# guarded_decode.py is a symlink to the backend's file: copied, as the rest, by content.
VENDORED = (
    "__init__.py",
    "config.py",
    "guarded_decode.py",
    "audio.py",
    "features.py",
    "model.py",
    "handler.py",
)

ROOT_HANDLER = '''"""Hugging Face custom handler entry point (written by `python -m stress_model bundle`)."""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))  # the vendored stress_model package next to this file

from stress_model.handler import BadAudioError  # noqa: E402
from stress_model.handler import EndpointHandler as _Handler  # noqa: E402

__all__ = ["BadAudioError", "EndpointHandler"]


class EndpointHandler(_Handler):
    def __init__(self, path: str = "") -> None:
        super().__init__(path or str(_HERE))
'''

# Inference needs no neurokit2/sklearn/typer/rich/matplotlib. torch stays pinned to the version the
# checkpoint was made with (on HF's images the CUDA/CPU build is theirs to pick).
REQUIREMENTS = ["torch==2.13.0", "safetensors==0.8.0", "av==18.1.0", "numpy==2.4.6", "librosa==0.11.0"]


def make_bundle(ckpt: Path, out: Path) -> Path:
    ckpt, out = Path(ckpt), Path(out)
    cfg = Config.load(ckpt / "config.json")
    if out.exists():
        shutil.rmtree(out)
    (out / "stress_model").mkdir(parents=True)
    for name in VENDORED:
        shutil.copy2(PACKAGE_DIR / name, out / "stress_model" / name)
    (out / "handler.py").write_text(ROOT_HANDLER)
    reqs = list(REQUIREMENTS)
    if cfg.features.encoder == "wav2vec2":
        reqs.append("transformers==5.24.0")
        src = Path(cfg.features.w2v_model)
        src = src if src.is_absolute() else ckpt / src
        if src.is_dir():  # ship a local encoder inside the bundle; hub ids are left to the endpoint to fetch
            shutil.copytree(src, out / "encoder")
            cfg.features.w2v_model = "encoder"
    (out / "requirements.txt").write_text("\n".join(reqs) + "\n")
    cfg.save(out / "config.json")
    shutil.copy2(ckpt / "model.safetensors", out / "model.safetensors")
    if (ckpt / "README.md").exists():
        shutil.copy2(ckpt / "README.md", out / "README.md")
    return out
