"""Monitoring: reference and current profiles, drift, out-of-distribution, performance, alerts."""
