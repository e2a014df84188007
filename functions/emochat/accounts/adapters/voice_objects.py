"""An account's voice objects in Cloud Storage (google-cloud-storage; the Storage emulator locally)."""

from __future__ import annotations

from google.cloud import storage


class CloudStorageVoiceObjects:
    def __init__(self, client: storage.Client, bucket: str) -> None:
        self._bucket = client.bucket(bucket)

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        for blob in self._bucket.list_blobs(prefix=prefix):
            blob.delete()  # every generation is gone with it: the bucket keeps no versions
            deleted += 1
        return deleted
