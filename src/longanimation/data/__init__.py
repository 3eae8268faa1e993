"""Data: frame and video I/O, line art, the synthetic toon world and training clips."""
