"""(b) Rollout throughput at 16 envs: the raw vector env, + a bare policy, reinforce-lab's collector
(the loops themselves are in ``rollout_throughput.py``, run here as a subprocess).

Alone: ``.venv/bin/python benchmarks/measure_rollout.py [--quick] [--out STEM]``
(merges part (b) into ``benchmarks/results.json`` and rewrites ``results.md``, as ``run.py --only b``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common import HERE, Measurement, fmt, fx, log, ratio, run_cmd, shown, table

TARGET = 0.5  # collector / bare loop, in vector env steps/s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags of its own: --quick makes the loops short."""


def settings(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(seconds=0.5 if args.quick else 2.0, repeats=2 if args.quick else 5)


def measure(cfg: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "rollout_throughput.py"), "--num-envs", "16",
           "--seconds", str(cfg.seconds), "--repeats", str(cfg.repeats)]
    log(f"(b) rollout throughput: {shown(cmd)}")
    res = run_cmd(cmd, timeout=600)
    if res["status"] != "finished":
        log(f"(b) failed: {res['stderr_tail'][-600:]}")
        return {"command": res["cmd"], "status": res["status"], "error": res["stderr_tail"]}
    data = json.loads(res["stdout"].strip().splitlines()[-1])
    m = data["median"]
    bare, coll = m["bare"]["vector_steps"], m["collector"]
    data["ratios"] = {
        "bare/raw": ratio(bare, m["raw"]["vector_steps"]),
        "collector/bare (vector env steps)": ratio(coll["vector_steps"], bare),
        "collector/bare (episode transitions)": ratio(coll["transitions"], bare),
        "collector transitions/vector steps": ratio(coll["transitions"], coll["vector_steps"]),
    }
    data["command"] = res["cmd"]
    data["status"] = "finished"
    log(f"(b) raw {fmt(m['raw']['vector_steps'])}, bare {fmt(bare)}, collector {fmt(coll['vector_steps'])} "
        f"vector steps/s ({fmt(coll['transitions'])} episode transitions/s); collector/bare "
        f"{data['ratios']['collector/bare (vector env steps)']:.2f} (vector steps), "
        f"{data['ratios']['collector/bare (episode transitions)']:.2f} (transitions)")
    return data


# --------------------------------------------------------------------------- report
def summary_rows(b: dict[str, Any]) -> list[list[str]]:
    if b.get("status") != "finished":
        return []
    x, y = b["ratios"]["collector/bare (vector env steps)"], b["ratios"]["collector/bare (episode transitions)"]
    return [["(b) rollout: EpisodeCollector / bare loop, vector env steps/s", f"{x:.0%}", f"≥ {TARGET:.0%}",
             "met" if x >= TARGET else "**missed**"],
            ["(b) same, counting only episode transitions", f"{y:.0%}", "",
             "copies that finished their quota wait for the slowest (unbiased batches), see (b)"]]


def section(b: dict[str, Any], results: dict[str, Any]) -> list[str]:
    L = ["", "## (b) Rollout throughput, CartPole-v1 × 16 copies, one torch thread", ""]
    if b.get("status") != "finished":
        return L + [f"Failed: {b.get('error', '')[-500:]}"]
    md = b["median"]
    L += [f"Median of {b['repeats']} interleaved repeats of ≥ {b['seconds']} s each. *Vector env steps* = "
          "`envs.step` calls × 16 (what the env simulated); *episode transitions* = the steps the "
          "collector returns (no auto-reset steps, no steps of copies waiting for the others to "
          "finish their 2 episodes).", ""]
    rows = [["(i) raw vector env, random actions", fmt(md["raw"]["vector_steps"]), "", fx(1.0)],
            ["(ii) + bare policy (MLP forward + `torch.multinomial` per step)", fmt(md["bare"]["vector_steps"]),
             "", fx(b["ratios"]["bare/raw"])],
            ["(iii) `EpisodeCollector.collect` + `make_policy` (32 episodes per call)",
             fmt(md["collector"]["vector_steps"]), fmt(md["collector"]["transitions"]),
             fx(ratio(md["collector"]["vector_steps"], md["raw"]["vector_steps"]))]]
    L += table(["loop", "vector env steps/s", "episode transitions/s", "vs raw"], rows)
    rb = b["ratios"]
    return L + [
        "", f"(iii)/(ii): **{rb['collector/bare (vector env steps)']:.0%}** in vector env steps/s, "
        f"**{rb['collector/bare (episode transitions)']:.0%}** in episode transitions/s "
        f"(target ≥ {TARGET:.0%}); {rb['collector transitions/vector steps']:.0%} of "
        "the collector's env steps are episode transitions.", "",
        "The target is read on env steps/s: that is the framework's cost per step of the vector env, "
        "what the bare loop measures. The lower transitions/s figure is not overhead but the price of "
        "unbiased batches: every env copy runs a fixed quota of whole episodes, and copies that have "
        "finished theirs keep stepping (a vector env steps all copies at once) until the slowest "
        "copy is done; keeping the first episodes to finish instead would bias each batch towards "
        "short episodes. The bare loop builds no episodes, so it pays nothing of the kind. With "
        "equal-length episodes (e.g. a CartPole policy that balances to the 500-step limit) the two "
        "figures coincide.", "", "```", b["command"], "```"]


MEASUREMENT = Measurement("b", add_arguments, settings, measure, summary_rows, section)

if __name__ == "__main__":
    import run  # the driver, with this part only

    run.main(parts="b", script=__file__)
