"""Match scores from several face models, fused, and thresholds calibrated to a stated false-alert rate."""
