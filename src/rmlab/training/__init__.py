"""Training stages: classifier reward models (Lightning, Bradley-Terry), DPO and PPO (TRL)."""
