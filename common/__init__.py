"""The bottom layer: settings read from the environment and small utilities every package may use.

Nothing here imports another screensync package (tests/test_import_layers.py checks it).
"""
