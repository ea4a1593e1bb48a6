"""Reinforcement learning (paper §4): GRPO with outcome and process supervision, reward models."""
