"""The SR operators: the projection is exact to round-off, A⁺ is the pseudo-inverse, bad input is refused."""

import math

import numpy as np
import pytest
import torch

from blurbench.errors import ConfigError
from blurbench.sr.operators import MAX_CONDITION, make_operator

OPS = [("avgpool", None), ("gaussian", None), ("gaussian", 2.0)]


@pytest.mark.parametrize("name,sigma", OPS)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_projection_is_consistent_with_y(name, sigma, dtype, tol):
    op = make_operator(name, (64, 48), factor=4, sigma=sigma)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 64, 48, generator=gen, dtype=dtype)
    f = torch.randn(3, 2, 64, 48, generator=gen, dtype=dtype)
    y = op.A(x)
    g = op.project(f, y)
    assert g.dtype == dtype
    assert ((op.A(g) - y).norm() / y.norm()).item() <= tol
    # g is the point of {A x = y} nearest f: f − g lies in the row space of A, i.e. A⁺A(f − g) = f − g
    d = f - g
    assert torch.allclose(op.pinv(op.A(d)), d, atol=100 * tol)


def dense(fn, shape_in, dtype=torch.float64):
    """The matrix of a linear map on images of shape_in, built column by column."""
    n = math.prod(shape_in)
    cols = [fn(torch.eye(n, dtype=dtype)[i].reshape(1, 1, *shape_in)).flatten() for i in range(n)]
    return torch.stack(cols, 1).numpy()


@pytest.mark.parametrize("name,sigma", [("avgpool", None), ("gaussian", None), ("gaussian", 0.8)])
def test_pinv_adjoint_and_identity_match_dense_matrices(name, sigma):
    op = make_operator(name, (8, 8), factor=4, sigma=sigma)
    A = dense(op.A, (8, 8))
    assert A.shape == (4, 64)
    np.testing.assert_allclose(dense(op.At, (2, 2)), A.T, atol=1e-13)
    np.testing.assert_allclose(dense(op.pinv, (2, 2)), np.linalg.pinv(A), atol=1e-12)
    np.testing.assert_allclose(A @ dense(op.pinv, (2, 2)), np.eye(4), atol=1e-12)
    # condition number of A Aᵀ as the operator reports it
    ev = np.linalg.eigvalsh(A @ A.T)
    assert op.condition == pytest.approx(ev.max() / ev.min(), rel=1e-9)


def test_avgpool_pinv_is_nearest_replication():
    op = make_operator("avgpool", (8, 12), factor=4)
    y = torch.arange(6.0).reshape(1, 1, 2, 3)
    up = op.pinv(y)
    assert torch.equal(up, torch.nn.functional.interpolate(y, scale_factor=4, mode="nearest"))
    assert torch.equal(op.A(up), y)


def test_matches_deepinv_downsampling():
    """deepinv's Downsampling with the same taps: its filter is convolved ('same' size, centre at
    h//2, circular padding) and then sampled at [::s], so the Gaussian's odd symmetric taps match
    ours directly, and the s×s block mean is a 7×7 filter whose ones sit at [0:4, 0:4] (the
    convolution flips them onto offsets 0..3). Its A† is an iterative least-squares solve (LSQR
    here; its default CG is 100× further off) whose residual ‖A A†y − y‖∞ stays near 3e-7 whatever
    max_iter and tol (ours: 4e-16), so A† is compared at 5e-6; the dense pseudo-inverse test above
    is the exact check."""
    import deepinv as dinv
    s, size = 4, (32, 32)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, *size, generator=gen, dtype=torch.float64)
    y = torch.rand(2, 3, size[0] // s, size[1] // s, generator=gen, dtype=torch.float64)
    box = torch.zeros(1, 1, 2 * s - 1, 2 * s - 1, dtype=torch.float64)
    box[..., :s, :s] = 1 / s ** 2
    sigma = 1.5
    r = math.ceil(4 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    gauss = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]
    for name, filt in [("avgpool", box), ("gaussian", gauss)]:
        ours = make_operator(name, size, factor=s, sigma=sigma if name == "gaussian" else None)
        theirs = dinv.physics.Downsampling(img_size=(3, *size), filter=filt, factor=s, padding="circular")
        torch.testing.assert_close(ours.A(x), theirs.A(x), rtol=0, atol=1e-12)
        torch.testing.assert_close(ours.At(y), theirs.A_adjoint(y), rtol=0, atol=1e-12)
        torch.testing.assert_close(ours.pinv(y), theirs.A_dagger(y, solver="lsqr", max_iter=200, tol=1e-14),
                                   rtol=0, atol=5e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="bicubic", size=(64, 64)), "sr operator 'bicubic' is unknown; expected one of avgpool, gaussian"),
    (dict(name="avgpool", size=(64, 62)), "sr factor 4 does not divide the resolution 64×62"),
    (dict(name="gaussian", size=(30, 30), factor=4), "sr factor 4 does not divide the resolution 30×30"),
    (dict(name="avgpool", size=(64, 64), factor=0), "sr factor 0 must be a positive integer"),
    (dict(name="gaussian", size=(64, 64), sigma=-1.0), "sr sigma -1.0 must be a finite number ≥ 0"),
    (dict(name="avgpool", size=(64, 64), sigma=1.0), "applies to the 'gaussian' operator only"),
    (dict(name="gaussian", size=(64, 64), sigma=4.0), r"condition number .* > limit 1e\+06.*lower sigma"),
    (dict(name="gaussian", size=(64, 64), sigma=8.0),
     r"A Aᵀ is numerically singular \(condition number .* ≥ 1.76e\+13\)"),
])
def test_bad_input_is_refused_in_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        make_operator(**kwargs)
    assert "\n" not in str(e.value)


def test_condition_limit_is_a_parameter():
    op = make_operator("gaussian", (64, 64), sigma=2.0)
    assert 1 < op.condition < MAX_CONDITION
    assert op.describe() == {"operator": "gaussian", "factor": 4, "sigma": 2.0, "condition": op.condition}
    assert make_operator("avgpool", (64, 64)).describe() == {"operator": "avgpool", "factor": 4, "sigma": None,
                                                            "condition": 1.0}
    with pytest.raises(ConfigError, match="condition number"):
        make_operator("gaussian", (64, 64), sigma=2.0, max_condition=op.condition / 2)


def test_wrong_image_size_is_refused():
    op = make_operator("gaussian", (32, 32))
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, 32, 32\), got \(1, 1, 16, 16\)"):
        op.A(torch.zeros(1, 1, 16, 16))
