"""Conditional normalising flows for the SR task (issue 26): couplings, the 2-D toy, the artifact
criterion and the Mahalanobis OOD score. Modules are imported directly (blurbench.flows.coupling, ...)."""
