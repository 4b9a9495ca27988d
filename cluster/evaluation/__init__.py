"""Open-set (watchlist) identification accuracy: scores of probes against a gallery reduced to per-probe
outcomes, the NIST FRVT 1:N figures over them (TPIR at a stated FPIR, rank-1, DET) with bootstrap intervals,
and the report that `lfr evaluate` writes."""
