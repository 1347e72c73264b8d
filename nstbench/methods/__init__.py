"""Methods (layer 3): the perceptual-loss core, Gatys optimisation and its runs, fast-network
training and inference, metrics and timing. Imports only from config and nets."""
