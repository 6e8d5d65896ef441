"""Selling Partner API: Reports 2021-06-30."""
