"""Model families: the networks the simulator builds, their hand-written passes and initialisers."""
