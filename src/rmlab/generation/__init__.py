"""Text generation from policies: batched sampling for PPO's held-out comparison and the reward-signal diagnostic
(:mod:`.sampling`), and lm-evaluation-harness backends with a resumable cache for downstream tasks (:mod:`.backends`)."""
