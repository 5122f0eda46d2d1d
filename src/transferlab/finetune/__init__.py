"""Freeze policies, discriminative learning rates and unfreeze schedules."""
