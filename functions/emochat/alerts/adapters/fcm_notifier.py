"""Push notifications through Firebase Cloud Messaging, with firebase_admin's own messaging code.

`send_each_for_multicast` sends one HTTP v1 request per token (v7 removed the batch
`send_multicast`). Each token's answer decides its fate (delivery.token_fate): UNREGISTERED, an
invalid registration token and SENDER_ID_MISMATCH mark it stale (the caller deletes it); 429, 5xx
and connection failures are retried for just those tokens, with backoff (Retry-After honoured, and
capped), a bounded number of times within a deadline. Beneath this, firebase_admin's own HTTP
adapter (urllib3) already retries 500/503, and a 429 that carries Retry-After, within each request:
what reaches this layer is what outlasted those.

FCM has no emulator. `use_fcm_endpoint` points an app's messaging service at another base URL
(the local stack's FCM stand-in): firebase_admin 7.7 hard-codes fcm.googleapis.com and offers no
option for it, so this sets the service's private `_fcm_url`; it checks that the attribute still
exists, and tests/unit/test_alerts_fcm.py runs the real client against a local server to catch
an upgrade that moves it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence

import firebase_admin
import google.auth.credentials
from firebase_admin import credentials, exceptions, messaging

from emochat.alerts.delivery import Delivery, TokenFate, backoff_s, token_fate
from emochat.alerts.model import Push

MAX_TOKENS_PER_CALL = 500  # send_each_for_multicast's limit

SendMulticast = Callable[[messaging.MulticastMessage], messaging.BatchResponse]


class _OwnerToken(google.auth.credentials.Credentials):
    """A bearer token that never needs refreshing: what the Firebase emulators accept."""

    def __init__(self) -> None:
        super().__init__()
        self.token = "owner"

    def refresh(self, request: object) -> None:
        pass


class EmulatorCredential(credentials.Base):
    """For the local stack: a credential that needs no network and no Google account."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        return _OwnerToken()


def use_fcm_endpoint(app: firebase_admin.App, endpoint: str) -> str:
    """Send this app's FCM requests to `endpoint` (a base URL) instead of Google's; the URL used."""
    service = messaging._get_messaging_service(app)
    if not hasattr(service, "_fcm_url"):
        raise RuntimeError(
            f"firebase_admin {firebase_admin.__version__} no longer keeps its FCM URL in _fcm_url: "
            "update use_fcm_endpoint"
        )
    url = f"{endpoint.rstrip('/')}/v1/projects/{app.project_id}/messages:send"
    service._fcm_url = url
    return url


def _error_code(exc: BaseException | None) -> tuple[str, int | None, str, float | None]:
    """FCM's error code (else the platform code), HTTP status, message and Retry-After seconds."""
    if exc is None:
        return "UNKNOWN", None, "", None
    if isinstance(exc, messaging.UnregisteredError):
        code = "UNREGISTERED"
    elif isinstance(exc, messaging.SenderIdMismatchError):
        code = "SENDER_ID_MISMATCH"
    elif isinstance(exc, messaging.QuotaExceededError):
        code = "QUOTA_EXCEEDED"
    elif isinstance(exc, messaging.ThirdPartyAuthError):
        code = "THIRD_PARTY_AUTH_ERROR"
    elif isinstance(exc, exceptions.FirebaseError):
        code = str(exc.code)
    else:
        code = type(exc).__name__
    response = getattr(exc, "http_response", None)
    status = getattr(response, "status_code", None)
    retry_after = None
    if response is not None:
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except (TypeError, ValueError):
            retry_after = None
    return code, status, str(exc), retry_after


class FcmNotifier:
    def __init__(
        self,
        send: SendMulticast,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        deadline_s: float = math.inf,
        call_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`deadline_s`: the most one send may take; `call_s`: the longest one FCM call may take
        (delivery.http_call_worst_s), so that no call starts that could end past the deadline."""
        self._send = send
        self._max_attempts = max(1, max_attempts)
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._deadline_s = deadline_s
        self._call_s = call_s
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def for_app(cls, app: firebase_admin.App, endpoint: str = "", **options: float) -> FcmNotifier:
        """A notifier on `app`'s messaging service; `endpoint` empty means Google's FCM."""
        if endpoint:
            use_fcm_endpoint(app, endpoint)
        return cls(lambda message: messaging.send_each_for_multicast(message, app=app), **options)

    @staticmethod
    def message(tokens: Sequence[str], push: Push) -> messaging.MulticastMessage:
        """The push for these tokens. Keyed by the alert's notificationId (Android collapse key and
        tag, APNs collapse id): sent twice (a retake after a crash), the device shows it once."""
        key = push.data.get("notificationId")
        # firebase_admin 7.7 deprecates `tokens` for `fids` (Firebase installation IDs, a different
        # target on the wire). The app registers FCM registration tokens (devices/{id}.token), so
        # tokens they stay until the app moves to installation IDs.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "MulticastMessage.tokens is deprecated", DeprecationWarning)
            return messaging.MulticastMessage(
                tokens=list(tokens),
                notification=messaging.Notification(title=push.title, body=push.body),
                data=dict(push.data),
                android=messaging.AndroidConfig(
                    priority="high",
                    collapse_key=key,
                    notification=messaging.AndroidNotification(tag=key) if key else None,
                ),
                apns=messaging.APNSConfig(
                    headers={"apns-collapse-id": key} if key else None,
                    payload=messaging.APNSPayload(aps=messaging.Aps(sound="default")),
                ),
            )

    def _send_once(self, tokens: Sequence[str], push: Push) -> list[BaseException | None]:
        """Each token's error, or None where it was delivered."""
        outcomes: list[BaseException | None] = []
        for start in range(0, len(tokens), MAX_TOKENS_PER_CALL):
            chunk = tokens[start : start + MAX_TOKENS_PER_CALL]
            try:
                batch = self._send(self.message(chunk, push))
            except exceptions.FirebaseError as exc:  # the whole call failed: every token shares it
                outcomes.extend(exc for _ in chunk)
                continue
            outcomes.extend(
                None if r.success else (r.exception or exceptions.UnknownError("no answer"))
                for r in batch.responses
            )
        return outcomes

    def send(self, tokens: Sequence[str], push: Push, budget_s: float = math.inf) -> Delivery:
        pending = list(dict.fromkeys(tokens))
        total = len(pending)
        deadline = self._clock() + min(self._deadline_s, budget_s)
        success, retries = 0, 0
        stale: list[str] = []
        errors: Counter[str] = Counter()
        attempt = 0
        if self._clock() + self._call_s > deadline:  # not even one call fits: leave it to the caller
            return Delivery(tokens=total, failure=total, unsent=total)
        while pending:
            attempt += 1
            transient: list[tuple[str, str]] = []
            retry_after: float | None = None
            for token, error in zip(pending, self._send_once(pending, push), strict=True):
                if error is None:
                    success += 1
                    continue
                code, status, message, after = _error_code(error)
                fate = token_fate(code, status, message)
                if fate is TokenFate.TRANSIENT:
                    transient.append((token, code))
                    if after is not None:
                        retry_after = max(retry_after or 0.0, after)
                    continue
                if fate is TokenFate.STALE:
                    stale.append(token)
                errors[code] += 1
            if not transient:
                break
            wait = backoff_s(attempt - 1, self._backoff_s, self._max_backoff_s, retry_after)
            if attempt >= self._max_attempts or self._clock() + wait + self._call_s > deadline:
                errors.update(code for _, code in transient)
                break
            self._sleep(wait)
            retries += 1
            pending = [token for token, _ in transient]
        return Delivery(
            tokens=total,
            success=success,
            failure=total - success,
            stale_tokens=tuple(stale),
            retries=retries,
            errors=dict(errors),
        )
