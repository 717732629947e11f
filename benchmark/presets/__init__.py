"""Shipped matrix presets (TOML), loaded with `benchmark.preset.load_preset(name)`."""
