"""One reward model on every benchmark, one row: an alias of `rmlab report-card model=<spec>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("report_card")
