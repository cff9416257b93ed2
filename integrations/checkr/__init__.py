"""Checkr: definition, record models and the few Checkr-only mapping functions."""
