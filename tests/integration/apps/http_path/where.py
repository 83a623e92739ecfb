"""Functions that say which thread ran them (the HTTP API runs short ones on
the event loop: runtime/http/inline.py)."""

import threading
import time

from runtime import action, mutation, query, v


def _busy(seconds):
    """Burn `seconds` of this thread's CPU."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@mutation(args={"busy": v.optional(v.float64())})
def touch(ctx, args):
    _busy(args.get("busy", 0.0))
    return threading.current_thread().name


@query(args={"sleep": v.optional(v.float64())})
def look(ctx, args):
    time.sleep(args.get("sleep", 0.0))
    return threading.current_thread().name


@action(args={})
def act(ctx, args):
    return threading.current_thread().name
