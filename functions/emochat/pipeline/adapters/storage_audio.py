"""Voice files from Cloud Storage (or the Storage emulator, via STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from emochat.pipeline.ports import ServiceError


class CloudStorageAudio:
    def __init__(self, client: storage.Client) -> None:
        self._client = client

    def download(self, bucket: str, name: str, generation: int, timeout_s: float) -> bytes:
        # Pin the generation: a re-upload of the same path must not be read in place of this one.
        blob = self._client.bucket(bucket).blob(name, generation=generation or None)
        # Half the time for retrying, half for the request in flight when retrying stops: in all at
        # most timeout_s (the client's defaults would retry for 120 s, each request for 60 s).
        half = max(timeout_s / 2, 0.1)
        try:
            return blob.download_as_bytes(timeout=half, retry=DEFAULT_RETRY.with_timeout(half))
        except gexc.NotFound as exc:
            raise ServiceError("audio_unavailable", "The uploaded file is no longer in storage.") from exc
        except gexc.GoogleAPICallError as exc:
            raise ServiceError("audio_unavailable", f"Storage answered {exc.code}.") from exc
