"""Placeholder."""


def build_extractor():
    pass
