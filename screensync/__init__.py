"""screensync."""
