"""A reply written later: the tour's scheduling pattern, in Python.

`ask` saves the question and schedules `reply` (an action: it may call an
outside API) to run right after the mutation commits; if `ask` fails,
nothing is scheduled. `reply` writes its answer through the internal
mutation `post`. Here the answer is a local stand-in, so the example runs
offline; a real app would call a language model in `reply` with its API key
from `os.environ`. `jobs` lists the scheduled functions and their states.
"""

from runtime import internal_action, internal_mutation, mutation, query, v


@mutation(args={"body": v.string(), "author": v.string()})
def ask(ctx, args):
    ctx.db.insert("messages", {"body": args["body"], "author": args["author"], "format": "text"})
    return ctx.scheduler.run_after(0, reply, {"question": args["body"]})


@internal_action(args={"question": v.string()})
def reply(ctx, args):
    answer = f"You asked: {args['question']!r}. (A local stand-in reply.)"
    ctx.run_mutation(post, {"body": answer})


@internal_mutation(args={"body": v.string()})
def post(ctx, args):
    ctx.db.insert("messages", {"body": args["body"], "author": "assistant", "format": "text"})


@query(args={})
def jobs(ctx, args):
    return ctx.db.system.query("_scheduled_functions").order("desc").take(20)
