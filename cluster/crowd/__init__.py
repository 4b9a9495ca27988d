"""Recorded crowds whose truth is known: synthesis (real faces walking camera to camera), ground truth, scoring."""
