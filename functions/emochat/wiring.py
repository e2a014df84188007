"""Build the real adapters from configuration, once per function instance (on first use).

Cold start (bench/bench_import.py): each trigger imports only its own feature's adapters, inside the
function that builds them, so the voice path never imports the alerts', suggestions' or accounts'
clients. The voice path shares one httpx client between the OpenAI client and the stress endpoint
(one TLS context and one HTTP stack instead of two), and builds that client, the two service
adapters on it and the Storage client on background threads while the first event's Firestore claim
and membership read run: the `openai` import is the largest single cost of a cold start, and no
upload needs the services before its audio is downloaded and decoded. The decoder's imports (PyAV,
numpy) are made there too, for the same reason: no upload is decoded before it is downloaded.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

import httpx
from firebase_functions import params
from google.cloud import firestore

from emochat import config
from emochat.pipeline.ports import AudioStore, StressScorer, Transcriber, Transcript, VoiceClip

if TYPE_CHECKING:
    import firebase_admin

    from emochat.accounts.service import AccountServices
    from emochat.alerts.model import ReadyReading
    from emochat.alerts.service import AlertConfig, AlertServices
    from emochat.pipeline.adapters.message_store import FirestoreMessageStore
    from emochat.pipeline.budget import Deadline
    from emochat.pipeline.service import PipelineConfig, Services
    from emochat.ratelimit.model import Limit
    from emochat.ratelimit.service import RateLimitServices
    from emochat.suggestions.service import (
        AlertContext,
        AlertSuggestion,
        SuggestionConfig,
        SuggestionServices,
    )
    from emochat.trends.service import TrendConfig, TrendServices

T = TypeVar("T")

log = logging.getLogger(__name__)


@functools.cache
def firestore_client() -> firestore.Client:
    # google.cloud.firestore goes anonymous under FIRESTORE_EMULATOR_HOST, where firebase_admin's
    # wrapper would demand credentials that a local machine does not have.
    return firestore.Client()


def message_store() -> FirestoreMessageStore:
    from emochat.pipeline.adapters.message_store import FirestoreMessageStore

    return FirestoreMessageStore(firestore_client())


@functools.cache
def http_client() -> httpx.Client:
    """The instance's one HTTP client, for the OpenAI client and the stress endpoint: each request
    carries its own timeout (the adapters set it), so the client's own is only a backstop."""
    return httpx.Client(timeout=httpx.Timeout(config.PROCESS_TIMEOUT_S, connect=10.0))


_voice_wiring = threading.Lock()


def voice_services() -> Services:
    """The voice path's adapters, built once per instance. Several first events may arrive at once
    on an instance (config.VOICE_CONCURRENCY): they wait for the one build instead of each making one."""
    with _voice_wiring:
        return _voice_services()


@functools.cache
def _voice_services() -> Services:
    from emochat.pipeline.service import Services

    # Params are read here, on the event's thread, so a bad configuration fails the event as before.
    api_key, base_url = config.OPENAI_API_KEY.value, config.STT_BASE_URL.value or None
    stt_timeout_s, stt_retries = config.STT_TIMEOUT_S.value, config.STT_MAX_RETRIES.value
    stt_model = config.STT_MODEL.value

    def transcriber() -> Transcriber:
        # The transcriber makes the retries itself (inside the event's deadline), as many as the
        # client's max_retries, each request within the client's timeout.
        import openai

        from emochat.pipeline.adapters.openai_stt import OpenAITranscriber

        client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=stt_timeout_s,
            max_retries=stt_retries,
            http_client=http_client(),
        )
        return OpenAITranscriber(client, model=stt_model)

    def audio_store() -> AudioStore:
        from google.cloud import storage

        from emochat.pipeline.adapters.storage_audio import CloudStorageAudio

        return CloudStorageAudio(storage.Client())

    endpoint_url, hf_token = config.STRESS_ENDPOINT_URL.value, config.HF_TOKEN.value or None
    stress_model_name = config.STRESS_MODEL_NAME.value
    stress_deadline_s, stress_timeout_s = config.STRESS_DEADLINE_S.value, config.STRESS_TIMEOUT_S.value
    scale_up_timeout_s = config.STRESS_SCALE_UP_TIMEOUT_S.value

    def stress_scorer() -> StressScorer:
        from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer

        return HuggingFaceStressScorer(
            http_client(),
            url=endpoint_url,
            token=hf_token,
            model_name=stress_model_name,
            deadline_s=stress_deadline_s,
            scale_up_timeout_s=scale_up_timeout_s,
            read_timeout_s=stress_timeout_s,
        )

    def remote_services() -> tuple[StressScorer, Transcriber]:
        # The HTTP client (its TLS context) first, then the OpenAI client on it.
        return stress_scorer(), transcriber()

    messages = message_store()
    # Last, so that what the event needs first is not slowed by them: the download comes first,
    # then decoding (PyAV and numpy, which emochat.pipeline.service imports on first use).
    audio = build_in_background(audio_store)
    build_in_background(import_decoder)
    remote = build_in_background(remote_services)
    return Services(
        transcriber=PendingTranscriber(_part(remote, 1)),
        stress_scorer=PendingStressScorer(_part(remote, 0), stress_model_name),
        audio_store=PendingAudioStore(audio),
        messages=messages,
    )


def import_decoder() -> None:
    # guarded_decode imports PyAV and numpy on its first decode: import them here, ahead of it.
    import av  # noqa: F401
    import numpy  # noqa: F401

    import emochat.pipeline.audio  # noqa: F401


def build_in_background(build: Callable[[], T]) -> Future[T]:
    """Start `build` on a daemon thread and return at once; `.result()` waits for it (and raises
    what it raised). Its Python work takes turns with the event's thread, which is mostly waiting
    on the network until the audio is decoded."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(build())
        except BaseException as exc:  # handed to whoever waits for the result
            future.set_exception(exc)

    threading.Thread(target=run, name=f"build-{build.__name__}", daemon=True).start()
    return future


def _part(built: Future[tuple], index: int) -> Future:
    """A future of one element of what `built` makes."""
    part: Future = Future()
    built.add_done_callback(
        lambda done: (
            part.set_exception(done.exception())
            if done.exception()
            else part.set_result(done.result()[index])
        )
    )
    return part


class PendingStressScorer:
    """The StressScorer port over an adapter still being built: the first scoring waits."""

    def __init__(self, built: Future[StressScorer], model_name: str) -> None:
        self._built = built
        self.model_name = model_name

    def score_stress(self, clip: VoiceClip, deadline: Deadline | None = None) -> float:
        return self._built.result().score_stress(clip, deadline)


class PendingTranscriber:
    """The Transcriber port over an adapter still being built: the first transcription waits."""

    def __init__(self, built: Future[Transcriber]) -> None:
        self._built = built

    def transcribe(
        self, clip: VoiceClip, language: str | None, deadline: Deadline | None = None
    ) -> Transcript:
        return self._built.result().transcribe(clip, language, deadline)


class PendingAudioStore:
    """The AudioStore port over an adapter still being built: the first download waits."""

    def __init__(self, built: Future[AudioStore]) -> None:
        self._built = built

    def download(self, bucket: str, name: str, generation: int, timeout_s: float) -> bytes:
        return self._built.result().download(bucket, name, generation, timeout_s)


def pipeline_config() -> PipelineConfig:
    from emochat.pipeline.model import AudioLimits, DailyBudget, StressThresholds
    from emochat.pipeline.service import PipelineConfig

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
    import firebase_admin
    from firebase_admin import credentials as firebase_credentials

    from emochat.alerts.adapters.fcm_notifier import EmulatorCredential

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
    from emochat.alerts.adapters.fcm_notifier import FcmNotifier
    from emochat.alerts.adapters.firestore_store import FirestoreAlertStore
    from emochat.alerts.service import AlertServices

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
    from emochat.suggestions.service import AlertContext

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
    from emochat.alerts.model import MAX_ALERTS_PER_HOUR_LIMIT, AlertPolicy, AlertPrefs
    from emochat.alerts.service import AlertConfig

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
    from firebase_admin import _http_client as firebase_http_client

    from emochat.alerts.delivery import http_call_worst_s

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
    from emochat.trends.adapters.firestore_store import FirestoreTrendStore
    from emochat.trends.service import TrendServices

    return TrendServices(store=FirestoreTrendStore(firestore_client()))


def trend_config() -> TrendConfig:
    from emochat.trends.service import TrendConfig

    return TrendConfig(default_time_zone=config.DEFAULT_TIME_ZONE.value)


@functools.cache
def suggestion_services() -> SuggestionServices:
    from emochat.suggestions.adapters.firestore_store import FirestoreSuggestionStore
    from emochat.suggestions.service import SuggestionServices
    from emochat.trends.adapters.firestore_store import FirestoreTrendStore

    return SuggestionServices(
        store=FirestoreSuggestionStore(firestore_client()), trends=FirestoreTrendStore(firestore_client())
    )


def suggestion_config() -> SuggestionConfig:
    from emochat.suggestions.bandit import PolicyParams
    from emochat.suggestions.service import SuggestionConfig

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
    from google.cloud import storage

    from emochat.accounts.adapters.firebase_accounts import FirebaseAccounts
    from emochat.accounts.adapters.firestore_store import FirestoreAccountStore
    from emochat.accounts.adapters.voice_objects import CloudStorageVoiceObjects
    from emochat.accounts.service import AccountServices

    return AccountServices(
        store=FirestoreAccountStore(firestore_client()),
        accounts=FirebaseAccounts(firebase_app()),
        voice=CloudStorageVoiceObjects(storage.Client(), default_bucket()),
    )


@functools.cache
def rate_limit_services() -> RateLimitServices:
    from emochat.ratelimit.adapters.firestore_store import FirestoreCallCounter
    from emochat.ratelimit.service import RateLimitServices

    return RateLimitServices(counter=FirestoreCallCounter(firestore_client()))


def callable_limit() -> Limit:
    from emochat.ratelimit.model import Limit

    return Limit(calls=max(config.CALLABLE_CALLS_PER_MINUTE.value, 1), window_s=60)


def suggest_for_alert(user_id: str, context: AlertContext) -> AlertSuggestion | None:
    """The alerts' hook: one coping suggestion for a sender's self-care alert, recorded under
    users/{uid}/recommendations so the app can rate it. Never raises: an alert goes out without a
    suggestion rather than not at all."""
    from emochat.suggestions.service import recommend_for_alert

    try:
        return recommend_for_alert(suggestion_services(), suggestion_config(), user_id, context)
    except Exception:
        log.exception("no coping suggestion for the alert to %s", user_id)
        return None
