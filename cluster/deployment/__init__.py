"""A deployment: the authorised use of live facial recognition at one place for one time window."""
