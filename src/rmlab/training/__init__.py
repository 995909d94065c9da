"""Training stages: classifier reward models (Lightning), and later DPO and PPO (TRL)."""
