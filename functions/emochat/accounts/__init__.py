"""Accounts: deleting everything kept for a user, on request (the callable delete_my_data) and for
accounts deleted elsewhere (the scheduled purge_deleted_users, the ops CLI).

ports.py: AccountStore, AccountDirectory · service.py · adapters/: Firestore, Firebase Auth.
"""
