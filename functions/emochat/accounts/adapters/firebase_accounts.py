"""Firebase Auth accounts (firebase_admin.auth): which uids still have one, and deleting one."""

from __future__ import annotations

from typing import Any


class FirebaseAccounts:
    """Which uids still have a Firebase Auth account (firebase_admin.auth.get_users)."""

    def __init__(self, app: Any = None) -> None:
        self._app = app

    def missing(self, uids: list[str]) -> set[str]:
        from firebase_admin import auth

        found: set[str] = set()
        for start in range(0, len(uids), 100):
            result = auth.get_users([auth.UidIdentifier(uid) for uid in uids[start : start + 100]], self._app)
            found.update(identifier.uid for identifier in result.not_found)
        return found

    def delete_account(self, uid: str) -> bool:
        """Delete the Auth account (ops path); False when there was none."""
        from firebase_admin import auth

        try:
            auth.delete_user(uid, self._app)
        except auth.UserNotFoundError:
            return False
        return True
