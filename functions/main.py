"""EmoChat Cloud Functions: declarations only. The work lives in the `emochat` package."""

from __future__ import annotations

from firebase_functions import logger, scheduler_fn, storage_fn
from firebase_functions.options import MemoryOption

from emochat import config


@storage_fn.on_object_finalized(
    timeout_sec=config.PROCESS_TIMEOUT_S,
    memory=MemoryOption.GB_1,
    secrets=[config.OPENAI_API_KEY, config.HF_TOKEN],
)
def process_voice_message(event: storage_fn.CloudEvent[storage_fn.StorageObjectData]) -> None:
    """Takes: a Cloud Storage object finalized in the default bucket.

    Writes: for voice/{uid}/{chatId}/{messageId}.{ext}, the message chats/{chatId}/messages/{messageId}
    — status processing first, then ready (transcript + stress), failed (a service gave up; what the
    other produced is kept) or rejected (bad input, with error.code). Other objects are ignored.
    """
    obj = event.data
    if not obj.name.startswith("voice/"):
        return

    from emochat import wiring
    from emochat.pipeline import Upload, process_upload

    upload = Upload(
        bucket=obj.bucket,
        name=obj.name,
        generation=int(obj.generation or 0),
        content_type=obj.content_type,
        size_bytes=int(obj.size or 0),
        metadata=dict(obj.metadata or {}),
    )
    outcome = process_upload(upload, wiring.voice_services(), wiring.pipeline_config())
    logger.info(
        "voice message processed",
        object=obj.name,
        generation=upload.generation,
        claim=outcome.claim,
        status=outcome.status,
        errorCode=outcome.problem.code if outcome.problem else None,
        timings=outcome.timings,
    )


@scheduler_fn.on_schedule(schedule="every 5 minutes", timeout_sec=120)
def sweep_stuck_messages(event: scheduler_fn.ScheduledEvent) -> None:
    """Takes: a Cloud Scheduler tick every 5 minutes.

    Writes: status failed with error.code processing_timeout on each message still processing past
    its lease (the function timeout), so no placeholder bubble stays forever.
    """
    from emochat import wiring
    from emochat.pipeline import sweep_abandoned

    swept = sweep_abandoned(wiring.message_store())
    if swept:
        logger.warn("swept abandoned messages", count=len(swept), messages=swept)
