"""checkr-partner-staging: a definition only; models and mapping come from integrations.checkr."""
