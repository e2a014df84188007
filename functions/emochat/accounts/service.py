"""Accounts: a user's data deletion, on request (the callable `delete_my_data`) and for accounts
deleted any other way (the scheduled `purge_deleted_users`, and the ops CLI)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emochat.accounts.ports import AccountDirectory, AccountStore, VoiceObjects
from emochat.domain import RequestError


@dataclass
class AccountServices:
    store: AccountStore
    accounts: AccountDirectory | None = None
    voice: VoiceObjects | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def delete_user_data(services: AccountServices, uid: str) -> int:
    """Everything of an account, in its own tree and in shared places; returns the documents deleted.

    Order matters: the tombstone first (from then on no writer creates anything for the uid, see
    accounts.model), then the memberships (storage.rules refuse its uploads from then on), then its
    messages in every chat with their alert markers, other users' feed entries about it, its voice
    objects, and last users/{uid} with everything under it (profile, devices, notifications, usage,
    recommendations, feedback model, stats, stress aggregates). Safe to run again after a failure.
    """
    if services.voice is None:
        raise RuntimeError("deleting an account needs its voice objects (Cloud Storage)")
    store = services.store
    store.mark_deleted(uid, services.clock())
    store.leave_chats(uid)
    deleted = store.delete_sent_messages(uid)
    deleted += store.delete_traces(uid)
    services.voice.delete_prefix(f"voice/{uid}/")
    return deleted + store.delete_user(uid)


def delete_my_data(services: AccountServices, uid: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """delete_my_data: {confirm: true} → {deleted: <documents>}; the app then deletes the account."""
    if (data or {}).get("confirm") is not True:
        raise RequestError("invalid-argument", "Pass {confirm: true} to delete your data.")
    return {"deleted": delete_user_data(services, uid)}


def purge_deleted_users(
    services: AccountServices, apply: bool = True, limit: int = 1000, max_share: float = 0.5
) -> list[str]:
    """Delete the data of users whose Auth account is gone (the Python SDK has no user-deleted
    trigger). Returns the uids found (and, with `apply`, purged), at most `limit` per run.

    A safety valve: when more than `max_share` of the users checked (and more than 10) look deleted,
    the account look-up is more likely misconfigured (another project, another tenant) than that
    many people left, and nothing is deleted.
    """
    if services.accounts is None:
        raise RuntimeError("purging needs an account directory (Firebase Auth)")
    accounts = services.accounts
    orphans: list[str] = []
    batch: list[str] = []
    checked = 0

    def flush() -> None:
        nonlocal checked
        if batch:
            checked += len(batch)
            orphans.extend(sorted(accounts.missing(list(batch))))
            batch.clear()

    for uid in services.store.user_ids():
        batch.append(uid)
        if len(batch) == 100:
            flush()
        if len(orphans) >= limit:
            break
    flush()
    if len(orphans) > 10 and len(orphans) > max_share * checked:
        raise RuntimeError(
            f"{len(orphans)} of {checked} users have no Auth account: refusing to purge "
            "(check the project and credentials; the ops CLI's purge-deleted lists them)"
        )
    orphans = orphans[:limit]
    if apply:
        for uid in orphans:
            delete_user_data(services, uid)
    return orphans
