"""Determinism: the clock is frozen and random is seeded inside queries and mutations."""

import random
import time
import uuid
from datetime import datetime

from runtime import action, mutation, query


def _sample():
    return {
        "t1": time.time(),
        "t2": time.time(),
        "dt": datetime.now().timestamp(),
        "r1": random.random(),
        "r2": random.random(),
        "u": str(uuid.uuid4()),
    }


@query
def frozen(ctx, args):
    before = time.time()
    time.sleep(0.02)
    return {**_sample(), "before": before}


@mutation
def stamp(ctx, args):
    t = time.time()
    ctx.db.insert("stamps", {"t": t, "r": random.random()})
    time.sleep(0.02)
    return {"t": t, "later": time.time()}


@action
def real(ctx, args):
    t1 = time.time()
    time.sleep(0.02)
    return {"t1": t1, "t2": time.time()}
