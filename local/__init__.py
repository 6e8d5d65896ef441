"""The local cloud: the whole platform on one machine, in an emulated AWS account (moto), against a sandbox of
the Amazon APIs. See ``local/cloud.py`` for the pieces and how they fit."""
