"""`python -m modelplane.operator [kopf run options]`: run the operator with its handlers loaded."""

import sys

from kopf.cli import main


def run() -> None:
    main(args=["run", "--module", "modelplane.operator.handlers", *sys.argv[1:]], prog_name="modelplane-operator")


if __name__ == "__main__":
    run()
