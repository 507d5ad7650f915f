"""Channels: the org's connections (admins), the providers' webhooks (Slack, WhatsApp),
and escalation of a conversation to a human."""
