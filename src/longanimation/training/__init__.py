"""The three training stages of the paper plus the tiny-preset pretraining stages."""
