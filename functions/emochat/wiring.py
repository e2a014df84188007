"""Build the real adapters from configuration, once per function instance (on first use)."""

from __future__ import annotations

import functools
import json
import logging
import os

import firebase_admin
import httpx
import openai
from firebase_admin import _http_client as firebase_http_client
from firebase_admin import credentials as firebase_credentials
from firebase_functions import params
from google.cloud import firestore, storage

from emochat import config
from emochat.accounts.adapters.firebase_accounts import FirebaseAccounts
from emochat.accounts.adapters.firestore_store import FirestoreAccountStore
from emochat.accounts.adapters.voice_objects import CloudStorageVoiceObjects
from emochat.accounts.service import AccountServices
from emochat.alerts.adapters.fcm_notifier import EmulatorCredential, FcmNotifier
from emochat.alerts.adapters.firestore_store import FirestoreAlertStore
from emochat.alerts.delivery import http_call_worst_s
from emochat.alerts.model import MAX_ALERTS_PER_HOUR_LIMIT, AlertPolicy, AlertPrefs, ReadyReading
from emochat.alerts.service import AlertConfig, AlertServices
from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer
from emochat.pipeline.adapters.message_store import FirestoreMessageStore
from emochat.pipeline.adapters.openai_stt import OpenAITranscriber
from emochat.pipeline.adapters.storage_audio import CloudStorageAudio
from emochat.pipeline.model import AudioLimits, DailyBudget, StressThresholds
from emochat.pipeline.service import PipelineConfig, Services
from emochat.ratelimit.adapters.firestore_store import FirestoreCallCounter
from emochat.ratelimit.model import Limit
from emochat.ratelimit.service import RateLimitServices
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
    # The transcriber makes the retries itself (inside the event's deadline), as many as the
    # client's max_retries, each request within the client's timeout.
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
        budget=DailyBudget(
            messages=config.VOICE_DAILY_MESSAGES.value,
            audio_seconds=config.VOICE_DAILY_AUDIO_MINUTES.value * 60.0,
        ),
        timeout_s=config.PROCESS_TIMEOUT_S,
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
    timeout = {"httpTimeout": config.FCM_HTTP_TIMEOUT_S}
    options = {"projectId": project, **timeout} if project else timeout
    return firebase_admin.initialize_app(credential, options, name=ALERTS_APP_NAME)


@functools.cache
def alert_services() -> AlertServices:
    return AlertServices(
        store=FirestoreAlertStore(firestore_client()),
        notifier=FcmNotifier.for_app(
            firebase_app(),
            endpoint=config.FCM_ENDPOINT.value,
            max_attempts=config.FCM_MAX_ATTEMPTS.value,
            call_s=fcm_call_worst_s(),
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
        max_alerts_per_hour=max(1, min(config.ALERT_MAX_PER_HOUR.value, MAX_ALERTS_PER_HOUR_LIMIT)),
        max_devices=max(1, min(config.ALERT_MAX_DEVICES.value, MAX_DEVICES_LIMIT)),
        timeout_s=config.ALERT_TIMEOUT_S,
        lease_margin_s=config.ALERT_LEASE_MARGIN_S,
        fcm_call_s=fcm_call_worst_s(),
    )


MAX_DEVICES_LIMIT = 20


def fcm_call_worst_s() -> float:
    """The longest one FCM call can take: firebase_admin's HTTP timeout through its own retries (its
    messaging client always uses DEFAULT_RETRY_CONFIG; read here so an upgrade that changes it shows)."""
    retry = firebase_http_client.DEFAULT_RETRY_CONFIG
    return http_call_worst_s(
        config.FCM_HTTP_TIMEOUT_S,
        connect=retry.connect or 0,
        read=retry.read or 0,
        status=retry.status or 0,
        backoff_factor=retry.backoff_factor,
        backoff_max_s=retry.backoff_max,
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


def default_bucket() -> str:
    """The project's default bucket, where voice messages are uploaded: the runtime's STORAGE_BUCKET,
    else FIREBASE_CONFIG's storageBucket (the emulators set it), else <project>.appspot.com."""
    bucket = os.environ.get("STORAGE_BUCKET") or json.loads(os.environ.get("FIREBASE_CONFIG") or "{}").get(
        "storageBucket"
    )
    return bucket or f"{params.PROJECT_ID.value or os.environ.get('GOOGLE_CLOUD_PROJECT')}.appspot.com"


@functools.cache
def account_services() -> AccountServices:
    # Account look-ups (purge_deleted_users) go through the alerts' firebase_admin app: emulator
    # credentials locally, Application Default Credentials in production.
    return AccountServices(
        store=FirestoreAccountStore(firestore_client()),
        accounts=FirebaseAccounts(firebase_app()),
        voice=CloudStorageVoiceObjects(storage.Client(), default_bucket()),
    )


@functools.cache
def rate_limit_services() -> RateLimitServices:
    return RateLimitServices(counter=FirestoreCallCounter(firestore_client()))


def callable_limit() -> Limit:
    return Limit(calls=max(config.CALLABLE_CALLS_PER_MINUTE.value, 1), window_s=60)


def suggest_for_alert(user_id: str, context: AlertContext) -> AlertSuggestion | None:
    """The alerts' hook: one coping suggestion for a sender's self-care alert, recorded under
    users/{uid}/recommendations so the app can rate it. Never raises: an alert goes out without a
    suggestion rather than not at all."""
    try:
        return recommend_for_alert(suggestion_services(), suggestion_config(), user_id, context)
    except Exception:
        log.exception("no coping suggestion for the alert to %s", user_id)
        return None
