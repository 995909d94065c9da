"""How far scores move with batch size, packing and order (docs/numerics.md):
an alias of `rmlab measure-score-bounds [measure.dtypes=[float32]]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("measure_score_bounds")
