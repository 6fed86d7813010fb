"""Image metrics: pixel (basic), spectral (spectra), and pretrained-network ones (fid, lpips_metric)."""
