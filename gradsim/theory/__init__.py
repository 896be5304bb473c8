"""Mean-field theory of the backprop signal: predicted per-layer gains and Jacobian spectra."""
