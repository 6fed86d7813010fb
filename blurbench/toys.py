"""The two 2-D toys of the super-resolution papers, as results: seconds each, the methods' physics tests.

- Sønderby et al.: a Swiss roll, a linear projection to 1-D, and the cross-entropy H[q, p] of each
  method's outputs under the known density (`blurbench.sr.toy`); the paper's ordering is
  MAP < AffGAN < MSE (its values are for its own density, shown beside ours).
- Hong et al.: a conditional 2-D flow with affine or spline coupling, sampled at conditions outside
  the training range (`blurbench.flows.toy`): max |x|, artifact rate, and the Mahalanobis OOD score
  of the condition against artifacts.
"""

from __future__ import annotations

from .atomic import atomic_path, write_text


def _csv(rows: list[dict]) -> str:
    from .scoring import csv_text

    return csv_text(rows, list(rows[0]))


def write_toys(out: dict, seed: int = 0, threads: int = 1) -> None:
    """Run both toys and write every file of `out` (`layout.TOY_FILES` key -> path)."""
    import torch

    from .flows import toy as flow_toy
    from .sr import toy as sr_toy

    torch.set_num_threads(threads)
    sr = sr_toy.run_toy(seed=seed)
    write_text(out["sr_table"], _csv(sr_toy.toy_table(sr)))
    with atomic_path(out["sr_figure"]) as tmp:
        sr_toy.draw_toy_figure(sr, tmp)
    flows = flow_toy.run_toy(seed=seed)
    write_text(out["flow_table"], _csv([r for rows, _ in flows.values() for r in rows]))
    write_text(out["flow_ood"], _csv(flow_toy.toy_ood(flows)))
    with atomic_path(out["flow_figure"]) as tmp:
        flow_toy.toy_figure(flows, tmp)

