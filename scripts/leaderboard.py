"""RewardMATH / RewardBench-math leaderboard from published score dumps:
an alias of `rmlab leaderboard [dumps_dir=<dir>]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("leaderboard")
