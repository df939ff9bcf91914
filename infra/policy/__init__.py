"""Cortiware's Pulumi policy pack; the rules live in :mod:`infra.policy.rules`."""
