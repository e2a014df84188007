"""Coping suggestions: which self-care suggestion to show a user, and what their ratings teach (the
callables recommend_coping and rate_suggestion, and the alerts' self-care suggestion).

catalog.py: the versioned catalog (catalog/coping_suggestions.json) · bandit.py: contexts and
Thompson sampling (pure) · ports.py: SuggestionStore · service.py · adapters/: Firestore.
"""
