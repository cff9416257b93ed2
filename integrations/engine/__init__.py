"""The generic sync engine: definitions, HTTP (auth, rate limiting, retries, pagination), sync runs.

Nothing here knows about a particular provider; provider knowledge lives in
`integrations/<provider>/` as data (definition.yaml), models and small mapping functions.
"""
