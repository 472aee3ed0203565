# Makes the config tree importable as the package `reinforce_lab.conf` (see pyproject.toml),
# so Hydra finds it with `pkg://reinforce_lab.conf` from any working directory.
