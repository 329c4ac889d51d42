"""sftlens.rollout."""
