"""`runtime.codegen`: TypeScript bindings from the functions' validators and
the schema (the text; tests/integration/test_codegen_tsc.py type-checks it)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runtime.codegen import GENERATED, generate, render
from runtime.codegen.typescript import ts_type
from runtime.functions.registry import FunctionLoadError, load_functions
from runtime.values import v
from tests.support.devserver import APP_FUNCTIONS


@pytest.mark.parametrize(
    ("validator", "expected"),
    [
        (v.string(), "string"),
        (v.number(), "number"),
        (v.int64(), "bigint"),
        (v.boolean(), "boolean"),
        (v.null(), "null"),
        (v.bytes(), "ArrayBuffer"),
        (v.any(), "any"),
        (v.id("messages"), 'Id<"messages">'),
        (v.literal('a"b'), '"a\\"b"'),
        (v.literal(3), "3n"),
        (v.literal(2.5), "2.5"),
        (v.literal(2.0), "2"),
        (v.literal(True), "true"),
        (v.array(v.union(v.string(), v.null())), "Array<string | null>"),
        (v.record(v.string(), v.number()), "Record<string, number>"),
        (v.union(v.array(v.string()), v.int64()), "Array<string> | bigint"),
        (
            v.object({"b": v.optional(v.number()), "a": v.string(), "two words": v.null()}),
            '{\n  a: string;\n  b?: number;\n  "two words": null;\n}',
        ),
        (v.object({}), "Record<string, never>"),
    ],
)
def test_each_validator_has_its_typescript_type(validator: object, expected: str) -> None:
    assert ts_type(validator.to_json()) == expected  # type: ignore[attr-defined]


def _app(root: Path, files: dict[str, str]) -> Path:
    functions = root / "functions"
    for name, text in files.items():
        path = functions / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return functions


APP = {
    "schema.py": """
        from runtime import define_schema, define_table, v
        schema = define_schema({
            "rooms": define_table({"name": v.string()}).index("by_name", ["name"]),
            "loose": define_table(),
        })
    """,
    "chat/rooms.py": """
        from runtime import internal_mutation, query, v
        @query(args={"name": v.string()}, returns=v.union(v.id("rooms"), v.null()))
        def find(ctx, args):
            return None
        @internal_mutation
        def wipe(ctx, args):
            return None
    """,
}


def test_modules_nest_and_visibility_splits_api_from_internal(tmp_path: Path) -> None:
    files = render(load_functions(_app(tmp_path, APP)))
    api = files["api.d.ts"]
    public, internal = api.split("export declare const internal")
    assert "chat: {\n    rooms: {\n      find: FunctionReference<" in public
    assert '"query",\n        "public",\n        {\n          name: string;\n        },' in public
    assert 'Id<"rooms"> | null\n' in public
    assert "wipe" not in public
    assert '"mutation",\n        "internal",\n        any,\n        any' in internal
    assert "export const api = anyApi;" in files["api.js"]


def test_the_data_model_follows_the_schema(tmp_path: Path) -> None:
    model = render(load_functions(_app(tmp_path, APP)))["dataModel.d.ts"]
    assert 'export type TableNames = "loose" | "rooms";' in model
    assert '_id: Id<"rooms">;' in model and "name: string;" in model
    assert 'by_name: ["name", "_creationTime"];' in model
    assert "} & (any);" in model  # a table without a validator holds anything


def test_output_is_deterministic_and_only_changed_files_are_rewritten(tmp_path: Path) -> None:
    functions = _app(tmp_path, APP)
    written = generate(functions)
    assert sorted(p.name for p in written) == ["api.d.ts", "api.js", "dataModel.d.ts"]
    assert all(p.parent == functions / GENERATED for p in written)
    assert generate(functions) == []  # nothing changed: nothing rewritten
    rooms = functions / "chat" / "rooms.py"
    rooms.write_text(rooms.read_text().replace('{"name": v.string()}', '{"name": v.number()}'))
    assert [p.name for p in generate(functions)] == ["api.d.ts"]
    # Written through a rename: no temporary file is left beside them.
    assert sorted(p.name for p in (functions / GENERATED).iterdir()) == [
        "api.d.ts",
        "api.js",
        "dataModel.d.ts",
    ]


def test_functions_that_do_not_load_are_an_error_naming_the_file(tmp_path: Path) -> None:
    functions = _app(tmp_path, {"broken.py": "this is not python\n"})
    with pytest.raises(FunctionLoadError, match=r"broken\.py"):
        generate(functions)
    assert not (functions / GENERATED).exists()


def test_the_default_apps_committed_bindings_are_current(tmp_path: Path) -> None:
    """functions/_generated is committed (as Convex's convex/_generated is):
    regenerating it must change nothing."""
    committed = APP_FUNCTIONS / GENERATED
    fresh = render(load_functions(APP_FUNCTIONS))
    for name, text in fresh.items():
        assert (committed / name).read_text() == text, f"run python -m runtime codegen: {name}"
