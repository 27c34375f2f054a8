"""hf_lpselect: a small model picks the instruction-tuning data a large one should train on.

Learning percentage (Mekala, Nguyen & Shang, ACL Findings 2024): fine-tune a small scorer model on
the whole dataset, score each sample's response perplexity before training and after every epoch,
and keep the samples it learned slowest.
"""

__version__ = "0.1.0"
