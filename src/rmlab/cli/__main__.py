"""``python -m rmlab.cli <command> ...``: the same as ``rmlab <command> ...`` (for ``accelerate launch -m``)."""

from rmlab.cli import main

if __name__ == "__main__":
    main()
