"""Build the real adapters from configuration, once per function instance (on first use)."""

from __future__ import annotations

import functools
import logging
import os

import firebase_admin
import httpx
import openai
from firebase_admin import credentials as firebase_credentials
from firebase_functions import params
from google.cloud import firestore, storage

from emochat import config
from emochat.accounts.adapters.firebase_accounts import FirebaseAccounts
from emochat.accounts.adapters.firestore_store import FirestoreAccountStore
from emochat.accounts.service import AccountServices
from emochat.alerts.adapters.fcm_notifier import EmulatorCredential, FcmNotifier
from emochat.alerts.adapters.firestore_store import FirestoreAlertStore
from emochat.alerts.model import AlertPolicy, AlertPrefs, ReadyReading
from emochat.alerts.service import AlertConfig, AlertServices
from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer
from emochat.pipeline.adapters.message_store import FirestoreMessageStore
from emochat.pipeline.adapters.openai_stt import OpenAITranscriber
from emochat.pipeline.adapters.storage_audio import CloudStorageAudio
from emochat.pipeline.model import AudioLimits, StressThresholds
from emochat.pipeline.service import PipelineConfig, Services
from emochat.suggestions.adapters.firestore_store import FirestoreSuggestionStore
from emochat.suggestions.bandit import PolicyParams
from emochat.suggestions.service import (
    AlertContext,
    AlertSuggestion,
    SuggestionConfig,
    SuggestionServices,
    recommend_for_alert,
)
from emochat.trends.adapters.firestore_store import FirestoreTrendStore
from emochat.trends.service import TrendConfig, TrendServices

log = logging.getLogger(__name__)


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
            scale_up_timeout_s=config.STRESS_SCALE_UP_TIMEOUT_S.value,
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


# ── Stress alerts ────────────────────────────────────────────────────────────────────────────────

ALERTS_APP_NAME = "emochat-alerts"


def _emulated() -> bool:
    return bool(os.environ.get("FIRESTORE_EMULATOR_HOST")) or os.environ.get("FUNCTIONS_EMULATOR") == "true"


@functools.cache
def firebase_app() -> firebase_admin.App:
    """The firebase_admin app the alerts push through, made on first use.

    A named app of its own: firebase_functions initializes the default app for every Firestore
    event with Application Default Credentials, which a machine running the emulators lacks.
    """
    try:
        return firebase_admin.get_app(ALERTS_APP_NAME)
    except ValueError:
        pass
    project = params.PROJECT_ID.value or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
    credential = EmulatorCredential() if _emulated() else firebase_credentials.ApplicationDefault()
    options = {"projectId": project, "httpTimeout": 10} if project else {"httpTimeout": 10}
    return firebase_admin.initialize_app(credential, options, name=ALERTS_APP_NAME)


@functools.cache
def alert_services() -> AlertServices:
    return AlertServices(
        store=FirestoreAlertStore(firestore_client()),
        notifier=FcmNotifier.for_app(
            firebase_app(), endpoint=config.FCM_ENDPOINT.value, max_attempts=config.FCM_MAX_ATTEMPTS.value
        ),
        suggest=_suggestion_for_alert,
    )


def _suggestion_for_alert(reading: ReadyReading, language: str) -> dict[str, str] | None:
    context = AlertContext(
        stress_level=reading.level.value, message_path=reading.message_doc, language=language
    )
    suggestion = suggest_for_alert(reading.sender_id, context)
    return suggestion.as_field() if suggestion else None


def alert_config() -> AlertConfig:
    z_text = config.ALERT_Z_THRESHOLD.value
    try:
        z_threshold = float(z_text)
    except ValueError as exc:
        raise ValueError(f"ALERT_Z_THRESHOLD must be a number, got {z_text!r}") from exc
    return AlertConfig(
        policy=AlertPolicy(z_threshold=z_threshold, min_samples=config.ALERT_BASELINE_MIN_SAMPLES.value),
        default_prefs=AlertPrefs(cooldown_minutes=float(config.ALERT_COOLDOWN_MINUTES.value)),
        lease_s=config.ALERT_TIMEOUT_S,
    )


# ── Coping suggestions, stress trends, accounts ──────────────────────────────────────────────────


@functools.cache
def trend_services() -> TrendServices:
    return TrendServices(store=FirestoreTrendStore(firestore_client()))


def trend_config() -> TrendConfig:
    return TrendConfig(default_time_zone=config.DEFAULT_TIME_ZONE.value)


@functools.cache
def suggestion_services() -> SuggestionServices:
    return SuggestionServices(
        store=FirestoreSuggestionStore(firestore_client()), trends=FirestoreTrendStore(firestore_client())
    )


def suggestion_config() -> SuggestionConfig:
    explore = min(max(config.RECOMMEND_EXPLORE_PERCENT.value, 1), 50)
    return SuggestionConfig(
        catalog_version=config.CATALOG_VERSION.value,
        params=PolicyParams(epsilon=explore / 100),
        default_time_zone=config.DEFAULT_TIME_ZONE.value,
    )


@functools.cache
def account_services() -> AccountServices:
    # Account look-ups (purge_deleted_users) go through the alerts' firebase_admin app: emulator
    # credentials locally, Application Default Credentials in production.
    return AccountServices(
        store=FirestoreAccountStore(firestore_client()), accounts=FirebaseAccounts(firebase_app())
    )


def suggest_for_alert(user_id: str, context: AlertContext) -> AlertSuggestion | None:
    """The alerts' hook: one coping suggestion for a sender's self-care alert, recorded under
    users/{uid}/recommendations so the app can rate it. Never raises: an alert goes out without a
    suggestion rather than not at all."""
    try:
        return recommend_for_alert(suggestion_services(), suggestion_config(), user_id, context)
    except Exception:
        log.exception("no coping suggestion for the alert to %s", user_id)
        return None
