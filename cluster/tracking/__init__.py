"""Per-camera tracking: faces linked frame to frame into tracklets, one watchlist decision per tracklet.

A face that matches nobody is deleted with its tracklet the moment the decision arrives; only
counts of it survive.
"""
