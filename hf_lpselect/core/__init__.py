"""The bottom layer: what every stage (scoring, selection, hub, training, eval, space) may import.

Nothing here imports a stage. :mod:`hf_lpselect.core.hardware` says what this process computes on
and which precision and batch sizes suit it.
"""
