"""Compare the episodes.csv of the loss-form sweep: do the three forms give the same run?

Usage: python experiments/loss_forms/compare.py SWEEP_DIR OUT_DIR
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

FORMS = ("log_prob", "cross_entropy", "update_rule")
STYLE = {"log_prob": dict(lw=3.0, alpha=0.35), "cross_entropy": dict(lw=1.6, ls="--"),
         "update_rule": dict(lw=1.0, ls=":", color="black")}


def load(sweep: Path) -> dict[str, dict[str, list[float]]]:
    runs: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for job in sorted(p for p in sweep.iterdir() if (p / "episodes.csv").exists()):
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        with open(job / "episodes.csv") as fh:
            runs[f'{cfg["env"]["id"]}, {cfg["device"]["precision"].split("-")[0]}-bit'][cfg["loss"]["name"]] = [float(r["return"]) for r in csv.DictReader(fh)]
    return runs


def main(sweep: Path, out: Path) -> None:
    runs = load(sweep)
    lines = ["# Loss forms: one gradient, three ways to write it", "",
             "Same seed, plain SGD (lr 0.05), γ^t on, 8 episodes per update, 4 envs, 200 episodes;",
             "float32 (as `rlab-train` runs by default) and float64 (`device.precision=64-true`).",
             "Command: `make reproduce EXP=loss_forms` (runs `experiments/loss_forms/run.sh`).", "",
             "| env, precision | loss form | episodes | mean return, first 50 | mean return, last 50 | first episode whose return differs from log_prob's | max abs diff vs log_prob, episodes 1–100 | max abs diff, all episodes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    ncol = 2
    nrow = (len(runs) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.5 * ncol, 3.8 * nrow), squeeze=False)
    for ax, (env_id, forms) in zip(axes.flat, sorted(runs.items())):
        ref = forms["log_prob"]
        for form in FORMS:
            r = forms[form]
            diffs = [abs(a - b) for a, b in zip(r, ref)]
            first = next((i + 1 for i, d in enumerate(diffs) if d != 0), None)
            lines.append(f"| {env_id} | `{form}` | {len(r)} | {sum(r[:50]) / 50:.2f} | {sum(r[-50:]) / 50:.2f} | "
                         f"{first or 'none (identical)'} | {max(diffs[:100]):.3g} | {max(diffs):.3g} |")
            ax.plot(range(1, len(r) + 1), r, label=f"loss={form}", **STYLE[form])
        ax.set_title(f"{env_id}: episode return, three loss forms")
        ax.set_xlabel("episode")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "curves.png", dpi=110)
    lines += ["", "![curves](curves.png)", "",
              "`update_rule` applies θ ← θ + α Σ c_t ∇ln π with ∇ln π from autograd; it performs the same",
              "floating-point operations as SGD on the `log_prob` loss, so the two runs are bit-for-bit identical.",
              "`cross_entropy` computes −ln π with different library kernels (`F.cross_entropy`,",
              "`F.gaussian_nll_loss`), whose results differ from `log_prob`'s in the last bit; the runs coincide",
              "exactly for the first episodes, and from the first differing episode on the last-bit difference is",
              "amplified by the sampling and the environment (the same happens in float64, only later).",
              "The gradients themselves agree to 1e-10 in float64 (tests/test_loss_forms.py)."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
