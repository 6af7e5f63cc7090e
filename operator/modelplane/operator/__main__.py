"""`python -m modelplane.operator [kopf run options]`: run the operator with its handlers loaded."""

import os
import sys

from kopf.cli import main

from modelplane.operator.settings import ensure_identity


def run() -> None:
    ensure_identity(os.environ)
    main(args=["run", "--module", "modelplane.operator.handlers", *sys.argv[1:]], prog_name="modelplane-operator")


if __name__ == "__main__":
    run()
