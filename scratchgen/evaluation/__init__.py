"""Evaluation of generated text (filled by issue 6)."""
