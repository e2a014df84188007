"""Build the real adapters from configuration, once per function instance (on first use)."""

from __future__ import annotations

import functools

import httpx
import openai
from google.cloud import firestore, storage

from emochat import config
from emochat.adapters.firestore_store import FirestoreMessageStore
from emochat.adapters.hf_stress import HuggingFaceStressScorer
from emochat.adapters.openai_stt import OpenAITranscriber
from emochat.adapters.storage_audio import CloudStorageAudio
from emochat.domain import AudioLimits, StressThresholds
from emochat.pipeline import PipelineConfig, Services


@functools.cache
def firestore_client() -> firestore.Client:
    # google.cloud.firestore goes anonymous under FIRESTORE_EMULATOR_HOST, where firebase_admin's
    # wrapper would demand credentials that a local machine does not have.
    return firestore.Client()


def message_store() -> FirestoreMessageStore:
    return FirestoreMessageStore(firestore_client())


@functools.cache
def voice_services() -> Services:
    stt_client = openai.OpenAI(
        api_key=config.OPENAI_API_KEY.value,
        base_url=config.STT_BASE_URL.value or None,
        timeout=config.STT_TIMEOUT_S.value,
        max_retries=config.STT_MAX_RETRIES.value,
    )
    stress_http = httpx.Client(timeout=httpx.Timeout(config.STRESS_TIMEOUT_S.value, connect=10.0))
    return Services(
        transcriber=OpenAITranscriber(stt_client, model=config.STT_MODEL.value),
        stress_scorer=HuggingFaceStressScorer(
            stress_http,
            url=config.STRESS_ENDPOINT_URL.value,
            token=config.HF_TOKEN.value or None,
            model_name=config.STRESS_MODEL_NAME.value,
            deadline_s=config.STRESS_DEADLINE_S.value,
        ),
        audio_store=CloudStorageAudio(storage.Client()),
        messages=message_store(),
    )


def pipeline_config() -> PipelineConfig:
    return PipelineConfig(
        thresholds=StressThresholds(
            moderate=float(config.STRESS_MODERATE_AT.value), high=float(config.STRESS_HIGH_AT.value)
        ),
        limits=AudioLimits(max_duration_ms=config.MAX_AUDIO_SECONDS.value * 1000),
        lease_s=config.PROCESS_TIMEOUT_S,
    )
