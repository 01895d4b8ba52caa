"""Torch and numpy code only: no Django imports here, so it can run anywhere."""
