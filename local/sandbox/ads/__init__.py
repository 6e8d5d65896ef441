"""Amazon Ads: profiles and reporting v3."""
