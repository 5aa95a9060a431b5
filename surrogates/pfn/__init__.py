"""supernas's prior-data fitted network: priors, model, training, predictions and the BoTorch wrapper."""
