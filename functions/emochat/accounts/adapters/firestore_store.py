"""An account's data in Firestore: users/{uid} and everything under it, its tombstone, its chat
memberships, its messages and the traces of it in shared places; and the list of users."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from emochat.accounts import model as accounts
from emochat.firestore_tx import BATCH_WRITES, run_transaction


class FirestoreAccountStore:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def mark_deleted(self, uid: str, now: datetime) -> None:
        self._db.document(accounts.tombstone_path(uid)).set(accounts.tombstone(now))

    def leave_chats(self, uid: str) -> int:
        chats = self._db.collection("chats")
        refs = {
            snap.reference.path: snap.reference
            for field in ("members", "invited")
            for snap in chats.where(filter=firestore.FieldFilter(field, "array_contains", uid)).stream()
        }
        changed = 0
        for ref in refs.values():

            @firestore.transactional
            def leave_in(transaction: firestore.Transaction, ref: firestore.DocumentReference = ref) -> bool:
                snap = ref.get(transaction=transaction)
                leave = accounts.leave_chat(snap.to_dict() or {}, uid) if snap.exists else None
                if leave is None:
                    return False
                if leave.delete_chat:
                    transaction.delete(ref)
                else:
                    transaction.update(ref, {"members": leave.members, "invited": leave.invited})
                return leave.delete_chat

            deleted = run_transaction(self._db, leave_in)
            if deleted:  # its messages and markers too: nobody can read them any more
                self._db.recursive_delete(ref)
            changed += 1
        return changed

    def _delete(self, refs: list[firestore.DocumentReference]) -> int:
        for start in range(0, len(refs), BATCH_WRITES):
            batch = self._db.batch()
            for ref in refs[start : start + BATCH_WRITES]:
                batch.delete(ref)
            batch.commit()
        return len(refs)

    def _sent_by(self, group: str, uid: str) -> list[firestore.DocumentReference]:
        # Collection-group queries on senderId: firestore.indexes.json's fieldOverrides.
        query = self._db.collection_group(group).where(filter=firestore.FieldFilter("senderId", "==", uid))
        return [snap.reference for snap in query.stream()]

    def delete_sent_messages(self, uid: str) -> int:
        refs = []
        for message in self._sent_by("messages", uid):
            chat = message.parent.parent
            refs += [message, chat.collection("alertMarkers").document(message.id)]
        return self._delete(refs)

    def delete_traces(self, uid: str) -> int:
        deleted = self._delete(self._sent_by("alertMarkers", uid) + self._sent_by("notifications", uid))
        return deleted + self._forget_in_alert_logs(uid)

    def _forget_in_alert_logs(self, uid: str) -> int:
        """Other people's alert logs (users/{uid}/stats/alerts) key their per-sender cooldown by the
        sender's uid: drop the deleted sender's key. A collection-group query on the map's subfield
        (fieldOverrides on `lastBySender` in firestore.indexes.json) finds them, also for people who
        have left the chats they shared."""
        field = FieldPath("lastBySender", uid).to_api_repr()
        query = self._db.collection_group("stats").where(filter=firestore.FieldFilter(field, ">", 0))
        logs = [snap.reference for snap in query.stream()]
        for ref in logs:
            ref.update({field: firestore.DELETE_FIELD})
        return len(logs)

    def delete_user(self, uid: str) -> int:
        return self._db.recursive_delete(self._db.collection("users").document(uid))

    def user_ids(self) -> Iterator[str]:
        # list_documents also yields users/{uid} documents that are missing but have subcollections.
        for ref in self._db.collection("users").list_documents(page_size=300):
            yield ref.id
