"""Build the Lambda package: one directory that every function of
template.yaml runs (its Globals CodeUri, build/lambda) and that infra/app.py
uploads as the code asset.

    build/lambda/
      runtime/  functions/        copied from the repository (less EXCLUDED:
                                  the local AWS harness, runtime/emulator);
                                  functions/ from --functions DIR when given
                                  (an app kept outside the repository)
      boto3/ starlette/ ...       pyproject.toml's dependencies, as wheels for
                                  the template's Lambda runtime and architecture

The dependencies are resolved under the versions installed in the running
virtualenv (a constraints file from `pip freeze`), so Lambda runs what the
tests ran. pip installs wheels for another platform only with
`--only-binary=:all:`; a dependency published as an sdist alone is first
built into a local wheelhouse (a pure-Python build serves any platform).
The dependencies are reinstalled only when they, the constraints or the
platform change (a stamp file records them); the sources are copied afresh
on every run.

Bytecode: every module is compiled by an interpreter of the Lambda's Python
version (`python3.N` on PATH, else pyenv's), as unchecked-hash .pyc files
(valid whatever the files' times after unzipping), so a cold start does not
compile the package first. Without such an interpreter the package ships
without bytecode and says so.

Usage: python infra/package.py [--dest build/lambda] [--functions DIR]
       (make lambda-package [FUNCTIONS=DIR])
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SOURCES = ("runtime", "functions")
# Copied sources that are not Lambda code: the local AWS harness is a command
# for the developer's machine (`python -m runtime aws-local`); an import-linter
# contract (pyproject.toml) keeps the handlers from importing it.
EXCLUDED = ("runtime/emulator",)
STAMP = ".deps.json"

# Lambda architecture -> the manylinux tag of its wheels (Amazon Linux 2023
# has glibc 2.34; manylinux2014 wheels run there and are the most published).
_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The runtime dependencies: pyproject.toml's [project] dependencies."""
    with pyproject.open("rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def lambda_target(template: dict[str, Any]) -> tuple[str, str]:
    """(python version, pip platform tag) of the template's functions, from
    Globals.Function.Runtime and .Architectures ("python3.12", ["arm64"])."""
    fn = template.get("Globals", {}).get("Function", {})
    runtime, arches = fn.get("Runtime", ""), fn.get("Architectures", ["x86_64"])
    if not isinstance(runtime, str) or not runtime.startswith("python3."):
        raise SystemExit(f"template.yaml: Globals.Function.Runtime is {runtime!r}, not python3.N")
    if len(arches) != 1 or arches[0] not in _PLATFORMS:
        raise SystemExit(f"template.yaml: Globals.Function.Architectures is {arches!r}")
    return runtime.removeprefix("python"), _PLATFORMS[arches[0]]


def copy_sources(dest: Path, root: Path = ROOT, functions: Path | None = None) -> None:
    """Replace dest/runtime and dest/functions with fresh copies (no caches,
    nothing under EXCLUDED); dest/functions from `functions` when given."""
    functions = functions if functions is not None else root / "functions"
    if not functions.is_dir():
        raise SystemExit(f"no functions folder at {functions} (FUNCTIONS=DIR names the app)")
    if not any(functions.glob("*.py")):
        raise SystemExit(f"{functions} holds no .py files: is it the app's functions folder?")
    caches = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")
    excluded = {(root / path).resolve() for path in EXCLUDED}

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(caches(directory, names))
        return skipped | {n for n in names if (Path(directory) / n).resolve() in excluded}

    for name in SOURCES:
        target = dest / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(functions if name == "functions" else root / name, target, ignore=ignore)


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def install_dependencies(
    dest: Path, reqs: list[str], python: str, platform: str, *, verbose: bool = False
) -> None:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # Only pins constrain pip; direct URLs or editable lines would not parse.
    pins = "".join(line + "\n" for line in frozen.splitlines() if "==" in line)
    key = {"requirements": reqs, "constraints": pins, "python": python, "platform": platform}
    stamp = dest / STAMP
    if stamp.exists() and json.loads(stamp.read_text()) == key:
        return
    if dest.exists():
        shutil.rmtree(dest)
    work = dest.parent / (dest.name + ".work")
    if work.exists():
        shutil.rmtree(work)
    (work / "wheels").mkdir(parents=True)
    constraints = work / "constraints.txt"
    constraints.write_text(pins)
    quiet = [] if verbose else ["--quiet"]
    _pip("wheel", *quiet, "--wheel-dir", str(work / "wheels"), "-c", str(constraints), *reqs)
    _pip(
        "install",
        *quiet,
        "--target",
        str(dest),
        "--no-compile",  # .pyc of this interpreter would be stale on Lambda's
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--platform",
        platform,
        "--only-binary=:all:",
        "--find-links",
        str(work / "wheels"),
        "-c",
        str(constraints),
        *reqs,
    )
    shutil.rmtree(dest / "bin", ignore_errors=True)  # console scripts: no use on Lambda
    shutil.rmtree(work)
    stamp.write_text(json.dumps(key, indent=1))


def lambda_interpreter(python: str) -> str | None:
    """An interpreter of Python `python` ("3.12") that runs, to compile
    bytecode with: `python3.N` on PATH, else pyenv's (its shims on PATH run
    only for the versions pyenv has selected)."""
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = [shutil.which(f"python{python}")]
    if pyenv.is_dir():
        candidates += [str(p) for p in sorted(pyenv.glob(f"{python}.*/bin/python{python}"))[::-1]]
    for candidate in filter(None, candidates):
        version = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if version.returncode == 0 and version.stdout.strip() == python:
            return candidate
    return None


def compile_bytecode(dest: Path, interpreter: str) -> None:
    """Compile every module under dest to unchecked-hash .pyc files (the
    source's time is never checked: a zip's extracted times do not matter)."""
    subprocess.run(
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
         "unchecked-hash", str(dest)],
        check=True,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument(
        "--functions", type=Path, default=None, help="the app's functions (default functions/)"
    )
    parser.add_argument("-v", action="store_true", help="show pip's output")
    args = parser.parse_args(argv)
    from samtranslator.yaml_helper import yaml_parse  # the infra extra (make infra-deps)

    python, platform = lambda_target(yaml_parse(TEMPLATE.read_text()))
    dest: Path = args.dest.resolve()
    install_dependencies(dest, requirements(), python, platform, verbose=args.v)
    copy_sources(dest, functions=args.functions.resolve() if args.functions else None)
    interpreter = lambda_interpreter(python)
    if interpreter is None:
        print(
            f"no python{python} here: the package ships without bytecode (Lambda compiles "
            f"each module at every cold start; install Python {python} to compile it)",
            file=sys.stderr,
        )
    else:
        compile_bytecode(dest, interpreter)
    print(
        f"{dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}: python {python}, "
        f"{platform}, {'with' if interpreter else 'without'} bytecode"
    )


if __name__ == "__main__":
    main()
