"""Per-user rate limits of the callables: a pure decider (model.py), a transactional counter per
user and callable (ports.py, adapters/firestore_store.py; tests/fakes/ratelimit.py), service.py."""
