"""Images and networks (layer 2): images, assets and data sets, losses, backbones and their
weights, checkpoints, the fast networks, devices, precision and records. Imports only from
config."""
