"""The dataset card template(s), installed as ``hf_lpselect.cards``."""
