"""ClearChecks: definition, record models and status-letter mapping."""
