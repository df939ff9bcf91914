"""Inbound webhooks: Stripe (`/api/webhooks/stripe`) and federation (`/api/webhooks/federation`).

Both verify the raw body in constant time before anything is stored, store each event
once per (source, event id), and answer a duplicate delivery 200 without processing it.
"""
