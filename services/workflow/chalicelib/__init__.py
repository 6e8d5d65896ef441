"""Workflow Manager: domain code."""
