"""The Hydra configuration of mri-metric-bench (YAML files), shipped with the installed package.

The entry points find it next to the `benchmark` package: `benchmark.cli.CONFIG_DIR`."""
