"""The assistant: a reply written by a scheduled action.

messages:send schedules `reply` when a message mentions @assistant. An
action may call outside APIs; `reply` asks OpenAI's chat completions API
(or the server at OPENAI_BASE_URL) only when OPENAI_API_KEY is set in the
dev server's environment, and
otherwise writes a local stand-in reply, so the example runs offline.
"""

import json
import os
import urllib.request

from runtime import internal_action, internal_mutation, v

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
"""Any server with OpenAI's chat completions API (a local one works too)."""
TIMEOUT_S = 30
"""How long the outside model may take before the stand-in reply is used."""


def _model_reply(question, key):
    request = urllib.request.Request(
        BASE_URL.rstrip("/") + "/chat/completions",
        data=json.dumps(
            {
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant in a group chat."},
                    {"role": "user", "content": question},
                ],
            }
        ).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        return json.load(answer)["choices"][0]["message"]["content"]


def stand_in_reply(question):
    """The reply without a model: says what it heard, and how to get a real one."""
    return f"You said: {question!r}. (A local stand-in: set OPENAI_API_KEY for a model's reply.)"


@internal_action(args={"question": v.string()})
def reply(ctx, args):
    key = os.environ.get("OPENAI_API_KEY")
    text = None
    if key:
        try:
            text = _model_reply(args["question"], key)
        except (OSError, KeyError, ValueError) as error:
            print(f"the model did not answer ({error}); writing the stand-in reply")
    ctx.run_mutation("assistant:post", {"body": text or stand_in_reply(args["question"])})


@internal_mutation(args={"body": v.string()})
def post(ctx, args):
    ctx.db.insert("messages", {"body": args["body"], "author": "assistant", "format": "text"})
