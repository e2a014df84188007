"""EmoChat Cloud Functions: declarations only. The work lives in the `emochat` package."""

from __future__ import annotations

from collections.abc import Callable

from firebase_functions import firestore_fn, https_fn, logger, scheduler_fn, storage_fn

from emochat import config
from emochat.domain import MessageStatus


@storage_fn.on_object_finalized(
    timeout_sec=config.PROCESS_TIMEOUT_S,
    memory=config.VOICE_MEMORY,
    cpu=config.VOICE_CPU,
    concurrency=config.VOICE_CONCURRENCY,
    max_instances=config.MAX_VOICE_INSTANCES,
    secrets=[config.OPENAI_API_KEY, config.HF_TOKEN],
)
def process_voice_message(event: storage_fn.CloudEvent[storage_fn.StorageObjectData]) -> None:
    """Takes: a Cloud Storage object finalized in the default bucket.

    Writes: for voice/{uid}/{chatId}/{messageId}.{ext}, the message chats/{chatId}/messages/{messageId}
    — status processing first (the first of transcript and stress reading is filled in as soon as it
    exists), then ready (transcript + stress), failed (a service gave up; what the other produced is
    kept) or rejected (bad input, with error.code). Other objects, and any object for a message id
    that already has a message (another uid, extension or generation), are ignored: a message belongs
    to its sender's first upload. A run that cannot write its end logs the object at error level.
    """
    obj = event.data
    if not obj.name.startswith("voice/"):
        logger.debug("not a voice message: ignored", object=obj.name)
        return

    from emochat import wiring
    from emochat.pipeline.service import Upload, process_upload

    upload = Upload(
        bucket=obj.bucket,
        name=obj.name,
        generation=int(obj.generation or 0),
        content_type=obj.content_type,
        size_bytes=int(obj.size or 0),
        metadata=dict(obj.metadata or {}),
    )
    try:
        outcome = process_upload(upload, wiring.voice_services(), wiring.pipeline_config())
    except Exception as exc:
        # The message stays processing until a redelivery or the sweeper fails it: say which one.
        logger.error(
            "voice message crashed", object=obj.name, generation=upload.generation, error=type(exc).__name__
        )
        raise
    # One line per event: ids, stage, status, error code and timings; never the transcript. Error
    # level when the run could not write its end (the trigger is never redelivered: README, "When a
    # message cannot be written") or turned an unexpected exception into a stage's failure.
    if outcome.lost or outcome.crashes:
        log = logger.error
    elif outcome.status is MessageStatus.FAILED or not outcome.written:
        log = logger.warn
    else:
        log = logger.info
    log(
        "voice message processed",
        object=obj.name,
        chatId=outcome.path.chat_id if outcome.path else None,
        messageId=outcome.path.message_id if outcome.path else None,
        generation=upload.generation,
        stage=outcome.stage,
        claim=outcome.claim,
        status=outcome.status,
        errorCode=outcome.problem.code if outcome.problem else None,
        timings=outcome.timings,
        written=outcome.written,
        unwritten=outcome.unwritten,
        crashes=list(outcome.crashes),
    )


@scheduler_fn.on_schedule(schedule="every 5 minutes", timeout_sec=120)
def sweep_stuck_messages(event: scheduler_fn.ScheduledEvent) -> None:
    """Takes: a Cloud Scheduler tick every 5 minutes.

    Writes: status failed with error.code processing_timeout on each message still processing past
    its lease (the function timeout plus a margin, so never one whose run is alive), so no
    placeholder bubble stays forever.
    """
    from emochat import wiring
    from emochat.pipeline.service import sweep_abandoned

    swept = sweep_abandoned(wiring.message_store())
    if swept:
        logger.warn("swept abandoned messages", count=len(swept), messages=swept)


@firestore_fn.on_document_written(
    document="chats/{chatId}/messages/{messageId}", timeout_sec=config.ALERT_TIMEOUT_S
)
def alert_on_high_stress(
    event: firestore_fn.Event[firestore_fn.Change[firestore_fn.DocumentSnapshot | None]],
) -> None:
    """Takes: any write of a message chats/{chatId}/messages/{messageId}.

    Acts only on the transition into status ready (each message once, duplicates included); every
    other write returns at once. Writes: the sender's baseline users/{uid}/stats/baseline and the
    marker chats/{chatId}/alertMarkers/{messageId}; for a high reading that is also unusual for the
    sender (or before the sender has a baseline), an FCM push (to each one's most recent devices)
    and a feed entry users/{uid}/notifications/{id} for the sender (self-care) and the other members
    (empathy; never invitees), within each one's alertPrefs, per-sender cooldown and hourly cap;
    device tokens that FCM calls stale are deleted. Recipients are served concurrently under one
    deadline; whatever a crash or the deadline leaves, sweep_stuck_alerts finishes.
    """
    from emochat.alerts import model as alerts

    change = event.data
    before = change.before.to_dict() if change.before is not None else None
    after = change.after.to_dict() if change.after is not None else None
    reading = alerts.ready_reading(event.params["chatId"], event.params["messageId"], before, after)
    if reading is None:
        return

    from emochat import wiring
    from emochat.alerts.service import alert_on_reading

    outcome = alert_on_reading(reading, wiring.alert_services(), wiring.alert_config())
    logger.info(
        "stress reading handled",
        message=reading.message_doc,
        level=reading.level.value,
        score=reading.score,
        action=outcome.action.value,
        reason=outcome.decision.reason.value if outcome.decision else None,
        z=outcome.decision.z if outcome.decision else None,
        recipients={uid: verdict.value for uid, verdict in outcome.verdicts.items()},
        delivered={uid: d.success for uid, d in outcome.deliveries.items()},
        pending=list(outcome.pending),
    )


@scheduler_fn.on_schedule(schedule="every 5 minutes", timeout_sec=config.ALERT_SWEEP_TIMEOUT_S)
def sweep_stuck_alerts(event: scheduler_fn.ScheduledEvent) -> None:
    """Takes: a Cloud Scheduler tick every 5 minutes.

    Writes: for each alert marker chats/{chatId}/alertMarkers/{messageId} still claimed past its
    lease (its run died, or its deadline left recipients), what alert_on_high_stress would have:
    the feed entries and pushes of the recipients not yet served (reserved ones are skipped, ones
    reserved but never finished are resumed), then the marker done. No trigger is ever redelivered:
    this is what finishes every alert.
    """
    from emochat import wiring
    from emochat.alerts.service import sweep_stuck_alerts as sweep

    alert_config = wiring.alert_config()
    run_s = config.ALERT_SWEEP_TIMEOUT_S - alert_config.finish_margin_s
    finished = sweep(wiring.alert_services(), alert_config, run_s=run_s)
    if finished:
        logger.warn("finished stuck alerts", count=len(finished), messages=finished)


# ── Coping suggestions, stress trends, data deletion ─────────────────────────────────────────────


def _ensure_default_app() -> None:
    """Callables check the caller's ID token with firebase_admin's default app before any handler
    runs. Make it unless something else did (no I/O: credentials load on first use)."""
    import firebase_admin

    try:
        firebase_admin.get_app()
    except ValueError:
        firebase_admin.initialize_app()


_ensure_default_app()


def _caller(req: https_fn.CallableRequest) -> str:
    if req.auth is None or not req.auth.uid:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAUTHENTICATED, "Sign in first.")
    if config.ENFORCE_APP_CHECK.value and req.app is None:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAUTHENTICATED, "App Check token required.")
    return req.auth.uid


def _answer(
    req: https_fn.CallableRequest,
    name: str,
    handler: Callable[..., dict],
    *deps: object,
    deleted_ok: bool = False,
) -> dict:
    """Run a service function as `handler(*deps, uid, data)` for the signed-in caller, within the
    caller's rate limit for callable `name`; RequestError becomes the error the app sees."""
    uid = _caller(req)
    from emochat import wiring
    from emochat.domain import RequestError
    from emochat.ratelimit.service import admit

    try:
        admit(wiring.rate_limit_services(), uid, name, wiring.callable_limit(), deleted_ok=deleted_ok)
        return handler(*deps, uid, req.data)
    except RequestError as exc:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode(exc.code), exc.message) from exc


@https_fn.on_call(timeout_sec=config.WELLBEING_TIMEOUT_S)
def recommend_coping(req: https_fn.CallableRequest) -> dict:
    """Takes: a signed-in user's call {count?: 1..5 = 3, stressLevel?: low|moderate|high|unknown,
    language?: ko|en}. Without stressLevel, a reading of the user's from the last 3 hours sets it.

    Returns: {recommendations: [{recommendationId, suggestionId, kind, title, text, language,
    durationMin, setting, tags, rank, reason}], context: {stressLevel, timeOfDay}, catalogVersion}.
    Writes: users/{uid}/recommendations/{recommendationId} for each suggestion shown (context,
    reason explore/exploit, sampled value, posterior).
    """
    from emochat import wiring
    from emochat.suggestions import service

    return _answer(
        req,
        "recommend_coping",
        service.recommend_coping,
        wiring.suggestion_services(),
        wiring.suggestion_config(),
    )


@https_fn.on_call(timeout_sec=config.WELLBEING_TIMEOUT_S)
def rate_suggestion(req: https_fn.CallableRequest) -> dict:
    """Takes: a signed-in user's call {recommendationId, helpful: bool, suggestionId?}.

    Returns: {recommendationId, suggestionId, helpful, recorded}; recorded is false for a repeated
    identical rating. Refuses (not-found) an id that was not shown to this user, (already-exists)
    a second rating the other way, (invalid-argument) a suggestionId the recommendation did not show.
    Writes, in one transaction: the recommendation's feedback, users/{uid}/wellbeing/model and
    suggestionStats/{suggestionId}.
    """
    from emochat import wiring
    from emochat.suggestions import service

    return _answer(
        req,
        "rate_suggestion",
        service.rate_suggestion,
        wiring.suggestion_services(),
        wiring.suggestion_config(),
    )


@https_fn.on_call(timeout_sec=config.WELLBEING_TIMEOUT_S)
def stress_trends(req: https_fn.CallableRequest) -> dict:
    """Takes: a signed-in user's call {days?: 1..90 = 14}.

    Returns: {timeZone, from, to, days: [{date, count, mean, max, high}]}, oldest first, one entry
    per local day (count 0, mean/max null on days without readings). Writes nothing.
    """
    from emochat import wiring
    from emochat.trends import service

    return _answer(
        req, "stress_trends", service.stress_trends, wiring.trend_services(), wiring.trend_config()
    )


@https_fn.on_call(timeout_sec=config.WELLBEING_TIMEOUT_S)
def delete_my_data(req: https_fn.CallableRequest) -> dict:
    """Takes: a signed-in user's call {confirm: true}. The app calls it, then deletes the Auth account.

    Returns: {deleted: <documents>}. Writes the tombstone deletedUsers/{uid}, takes the uid out of
    every chat's members and invited, deletes its messages in every chat with their alert markers,
    other users' feed entries about it, its voice objects voice/{uid}/**, and users/{uid} with
    everything under it (README "Deleting an account"). (The Python SDK has no Auth user-deleted
    trigger; purge_deleted_users catches accounts deleted any other way.)
    """
    from emochat import wiring
    from emochat.accounts import service

    result = _answer(
        req, "delete_my_data", service.delete_my_data, wiring.account_services(), deleted_ok=True
    )
    logger.info("user data deleted on request", uid=_caller(req), documents=result["deleted"])
    return result


@firestore_fn.on_document_written(
    document="chats/{chatId}/messages/{messageId}", timeout_sec=config.WELLBEING_TIMEOUT_S
)
def update_stress_trends(
    event: firestore_fn.Event[firestore_fn.Change[firestore_fn.DocumentSnapshot | None]],
) -> None:
    """Takes: any write of a message chats/{chatId}/messages/{messageId}.

    Acts only when the message's reading changes for its sender's trend (it became ready with a
    stress reading, was re-scored, stopped being ready, or was deleted); every other write returns
    at once. Writes, in one transaction: users/{senderId}/stressIndex/{chatId|messageId} (the
    reading and the day it is counted on) and the bounded aggregates of that day,
    users/{senderId}/stressDaily/{YYYY-MM-DD} (the sender's local date; a reading that moves day
    leaves the old day too), so redelivery changes nothing.
    """
    from emochat.trends import model as trends

    change = event.data
    before = change.before.to_dict() if change.before is not None else None
    after = change.after.to_dict() if change.after is not None else None
    if not trends.is_relevant(before, after):
        return

    from emochat import wiring
    from emochat.trends.service import record_message_change

    chat_id, message_id = event.params["chatId"], event.params["messageId"]
    applied = record_message_change(
        wiring.trend_services(), wiring.trend_config(), chat_id, message_id, before, after
    )
    logger.info(
        "stress trend updated",
        message=f"chats/{chat_id}/messages/{message_id}",
        changes=[{"user": c.user_id, "day": c.day, "put": c.reading is not None} for c in applied],
    )


@scheduler_fn.on_schedule(schedule="every day 04:00", timeout_sec=540)
def purge_deleted_users(event: scheduler_fn.ScheduledEvent) -> None:
    """Takes: a Cloud Scheduler tick once a day.

    Writes: for each uid under users/ that has no Firebase Auth account any more (at most 1000 a
    run), the same deletion as delete_my_data: the Python SDK has no user-deleted trigger.
    """
    from emochat import wiring
    from emochat.accounts.service import purge_deleted_users

    purged = purge_deleted_users(wiring.account_services(), apply=True, limit=1000)
    if purged:
        logger.warn("purged data of deleted users", count=len(purged), uids=purged)
