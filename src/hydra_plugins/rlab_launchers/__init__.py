"""Hydra launchers shipped with reinforce-lab (Hydra finds plugins in the ``hydra_plugins`` namespace)."""
