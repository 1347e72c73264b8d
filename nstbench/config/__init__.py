"""Declarations, torch-free (layer 1): the sources and their presets, specs, variants, weight
families, profiles, compute settings, claims and errors. `nstbench presets` and every `--help`
read only these. Imports nothing from the layers above."""
