"""`python -m screensync ...` runs the CLI (used where the console script is not on PATH)."""

from screensync.cli import main

if __name__ == "__main__":
    main()
