"""`python -m runtime ...`: the command line (see runtime/cli/main.py)."""

import sys

from runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
