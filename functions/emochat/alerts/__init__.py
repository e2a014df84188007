"""Stress alerts: which ready message alerts whom, in what words, and its delivery over FCM (the
trigger alert_on_high_stress).

model.py: readings, personal baselines, alert and recipient decisions, pushes (pure) · texts.py:
the user-facing copy (catalog/alert_texts.json) · delivery.py: FCM token fates and backoff (pure) ·
ports.py: AlertStore, Notifier · service.py: alert_on_reading · adapters/: Firestore, FCM.
"""
