"""Training: the loop (loop.py), per-step math (steps.py), critic schedule, optimisers, weight average, checkpoints."""
