"""`lpselect train`: TRL's SFT of the target model on a curated split."""
