"""The papers' tables (md, CSV, LaTeX) and heatmaps from run outputs:
an alias of `rmlab make-tables runs=<dir or glob>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("make_tables")
