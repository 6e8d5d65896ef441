"""Serverless Data Lake: domain code."""
