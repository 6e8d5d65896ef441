"""Selling Partner Reporting: domain code."""
