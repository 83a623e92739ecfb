"""`python -m runtime ...`: the command line (the dev server arrives with the functions issue)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(
        f"runtime {' '.join(args)}: the dev server and CLI are not built yet "
        "(they arrive with the functions issue); today the database core is a library: "
        "see README.md.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
