"""Scores on the Hub: pushed columns, subset configs, the generated dataset card."""
