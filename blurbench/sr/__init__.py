"""Super-resolution task: degradation operators, the AffGAN losses, the 2-D toy and the SR network."""
