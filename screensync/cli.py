"""screensync command line."""


def main() -> None:
    pass
