"""videogan: an LSTM + DCGAN video generator with a VGAN 3D critic, trained with WGAN-GP."""

__version__ = "0.1.0"
