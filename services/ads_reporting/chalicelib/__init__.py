"""Amazon Ads Reporting: domain code."""
