"""Delivery: the single-attempt completion callback, signed webhooks and the address policy they share."""
