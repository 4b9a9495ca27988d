"""lfr-cluster: live and retrospective facial recognition across a network of cameras."""
