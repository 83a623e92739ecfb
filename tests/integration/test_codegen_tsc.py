"""Generated bindings type-check a TypeScript app with `tsc` (strict), and a
changed validator makes the old call fail to compile: the types follow the
Python validators. tsc and the convex package's types come from tests/js
(`make js-deps`)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from runtime.codegen import generate
from tests.support.devserver import ROOT

JS = ROOT / "tests" / "js"
TSC = JS / "node_modules" / ".bin" / "tsc"

SCHEMA = """
    from runtime import define_schema, define_table, v
    schema = define_schema({
        "messages": define_table({"author": v.string(), "body": v.string()}),
    })
"""
MESSAGES = """
    from runtime import mutation, query, v

    @mutation(args={"author": v.string(), "body": v.string()}, returns=v.id("messages"))
    def send(ctx, args):
        return ctx.db.insert("messages", args)

    @query(args={}, returns=v.number())
    def count(ctx, args):
        return len(ctx.db.query("messages").collect())

    @query(args={})
    def list(ctx, args):
        return ctx.db.query("messages").collect()
"""
APP_TS = """
    import { ConvexHttpClient } from "convex/browser";
    import { api } from "./functions/_generated/api";
    import type { Doc, Id } from "./functions/_generated/dataModel";

    export async function main(client: ConvexHttpClient): Promise<string> {
      const id: Id<"messages"> = await client.mutation(api.messages.send, {
        author: "ann",
        body: "hello",
      });
      const n: number = await client.query(api.messages.count);
      const docs: Doc<"messages">[] = await client.query(api.messages.list, {});
      return `${id} ${n} ${docs[0].body} ${docs[0]._creationTime.toFixed()}`;
    }
"""
TSCONFIG = """{
  "compilerOptions": {
    "strict": true, "noEmit": true, "target": "es2020",
    "module": "esnext", "moduleResolution": "bundler", "skipLibCheck": true
  },
  "files": ["app.ts"]
}
"""


def _project(root: Path) -> Path:
    functions = root / "functions"
    functions.mkdir()
    (functions / "schema.py").write_text(textwrap.dedent(SCHEMA))
    (functions / "messages.py").write_text(textwrap.dedent(MESSAGES))
    (root / "app.ts").write_text(textwrap.dedent(APP_TS))
    (root / "tsconfig.json").write_text(TSCONFIG)
    (root / "node_modules").symlink_to(JS / "node_modules")  # convex's types
    return functions


def _tsc(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TSC), "-p", str(root)], capture_output=True, text=True, timeout=120, cwd=root
    )


def test_generated_bindings_type_check_and_follow_a_changed_validator(tmp_path: Path) -> None:
    functions = _project(tmp_path)
    generate(functions)
    done = _tsc(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    # `body` becomes a number and `count` returns a string: the old calls fail.
    messages = functions / "messages.py"
    messages.write_text(
        messages.read_text()
        .replace('"body": v.string()}, returns', '"body": v.number()}, returns')
        .replace("returns=v.number()", "returns=v.string()")
    )
    generate(functions)
    done = _tsc(tmp_path)
    assert done.returncode != 0
    errors = [line for line in done.stdout.splitlines() if "error TS" in line]
    assert any(
        "app.ts(9," in e and "'string' is not assignable to type 'number'" in e for e in errors
    ), errors  # body: "hello"
    assert any(
        "app.ts(11," in e and "'string' is not assignable to type 'number'" in e for e in errors
    ), errors  # const n: number = <string>


def test_a_renamed_argument_fails_the_old_call_naming_it(tmp_path: Path) -> None:
    functions = _project(tmp_path)
    messages = functions / "messages.py"
    # `author` becomes `sender`: the call that still sends `author` names both.
    messages.write_text(
        messages.read_text().replace('{"author": v.string()', '{"sender": v.string()')
    )
    generate(functions)
    done = _tsc(tmp_path)
    assert done.returncode != 0
    errors = [line for line in done.stdout.splitlines() if "error TS" in line]
    assert any("app.ts(8," in e and "'author' does not exist" in e for e in errors), errors
