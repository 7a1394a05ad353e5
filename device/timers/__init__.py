"""Local timers: they run on the speaker, survive a service restart, and ring until "stop".

`TimerBook` is the pure store (the caller passes the clock value in), `TimerStore` its atomic JSON
file, `TimerView` what an answer template reads, `TimerRinger` the asyncio edge that rings.
"""

from .book import MAX_SECONDS, TimerBook
from .ringer import TimerRinger
from .store import TimerStore
from .view import Timer, TimerView

__all__ = ["MAX_SECONDS", "Timer", "TimerBook", "TimerRinger", "TimerStore", "TimerView"]
