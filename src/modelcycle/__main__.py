"""``python -m modelcycle``: the same as the ``modelcycle`` command."""

from modelcycle.cli import main

if __name__ == "__main__":
    main()
