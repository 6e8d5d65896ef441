"""Tenant Provisioning Service: domain code."""
