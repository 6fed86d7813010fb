"""Sønderby et al.'s reported numbers, shown beside ours where the dataset matches (never as ours).

Table 2 of "Amortised MAP Inference for Image Super-resolution" (ICLR 2017, arXiv 1610.04490): CelebA
64² → 16², SSIM, PSNR (dB) and the LR consistency ‖x − Aŷ‖² ("LR MSE"), images in [0, 1]. The
harness names its methods `mse`, `aff_mse`, `soft_gan`, `aff_gan`. Quoted from the project's spec
(sr.md, from a translation): check against the arXiv PDF before citing.
"""

SOURCE = "Sønderby et al. 2017, Table 2 (CelebA 64→16)"
TABLE2 = {
    "mse": {"ssim": 0.90, "psnr": 26.30, "lr_mse": 8.0e-5},
    "aff_mse": {"ssim": 0.91, "psnr": 26.53, "lr_mse": 1.6e-10},
    "soft_gan": {"ssim": 0.76, "psnr": 21.11, "lr_mse": 2.3e-3},
    "aff_gan": {"ssim": 0.81, "psnr": 23.02, "lr_mse": 9.1e-10},
}
