"""The scorer run: arguments, the TRL trainer pair and callback, the scoring passes, the run itself."""
