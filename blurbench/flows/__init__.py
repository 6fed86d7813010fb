"""Conditional normalising flows for the SR task (issue 26): couplings, the 2-D toy, the artifact
criterion and the Mahalanobis OOD score. Modules are imported directly (blurbench.flows.coupling, ...).

In the workflow (`experiments.flows`), a flow method is a file `methods/<name>.py` with
  - `TASK = "flow"`;
  - `COUPLING`, one of `coupling.COUPLINGS` (the coupling of every layer of `sr_flow.SRFlow`);
  - `PARAMS`, the coupling's keywords with their defaults, and `validate(params)`, raising
    `ConfigError` naming the key.
Its runs train in `train_run` and are evaluated in `evaluate_run` through the workflow's own train and
evaluate rules, as the SR task's runs are.
"""
