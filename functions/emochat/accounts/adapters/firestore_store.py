"""A user's data in Firestore: everything under users/{uid}, and the list of users."""

from __future__ import annotations

from collections.abc import Iterator

from google.cloud import firestore


class FirestoreAccountStore:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def delete_user(self, uid: str) -> int:
        return self._db.recursive_delete(self._db.collection("users").document(uid))

    def user_ids(self) -> Iterator[str]:
        # list_documents also yields users/{uid} documents that are missing but have subcollections.
        for ref in self._db.collection("users").list_documents(page_size=300):
            yield ref.id
