"""A clock the test moves by hand, for the pure components that take a `clock` callable."""


class ManualClock:
    """Starts at 1000.0 s; a test advances it by assigning `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
