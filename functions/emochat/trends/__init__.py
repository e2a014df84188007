"""Stress trends: each user's daily stress aggregates, kept in step with their messages (the trigger
update_stress_trends, the callable stress_trends, the ops CLI's verify and rebuild).

model.py: day documents and their aggregates (pure) · ports.py: TrendStore · service.py ·
adapters/: Firestore.
"""
