"""Long-animation inference (segments, memory, Color Consistency Fusion)."""
