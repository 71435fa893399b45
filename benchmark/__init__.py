"""mri-metric-bench: which image-quality metrics can be trusted to judge generated brain MRI."""

__version__ = "0.1.0"

from benchmark.config_schema import register_schemas

register_schemas()
