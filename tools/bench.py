"""Speed and memory of the engine (`make bench`): prints figures, asserts nothing.

Cases, each in its own process so that its peak memory is its own:

* c2c12   a real 1040 x 1392 C2C12 phase-contrast frame, crop mode: seconds per stage and per
          image, cells, peak memory, seconds to measure the cell table; what ``--diameter
          auto``'s estimate adds (it runs before segmenting), and what one correction in the
          app costs (the image segmented again from its centres and a click); all also for dic
          and nuclei; and what following its cells to the next time point costs (--track)
* dic     the dic model on a 1040 x 1392 mosaic of a real 512 x 512 HeLa DIC frame (mirrored
          tiles; read from ../shared/data only, never copied)
* nuclei  the nuclei model on a 1040 x 1392 mosaic of a real 1024 x 1024 GOWT1 frame (likewise)
* modes   the central 512 x 512 region of the C2C12 frame (or of ``--frame``) in crop and full
          mode in the same run: time ratio and agreement (per-cell map correlation near each
          cell, labels mDice)
* big     a 4096 x 4096 image (the C2C12 frame mirrored into a mosaic): seconds and peak memory,
          and following its 2,500 cells to the next time point

Goals (issues 3 and 5, on a 2-core CPU): <= 10 s per 1040 x 1392 frame for every shipped model;
crop >= 20x faster than full;
<= 2 GB peak on 4096 x 4096.

    python tools/bench.py [--model phase] [--only c2c12,modes] [--out bench-output]
    python tools/bench.py --model dic --only modes --margin 44 \
        --frame ../shared/data/hela-dic/images/t062.tif   # a margin trial on the model's own cells
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("c2c12", "dic", "nuclei", "modes", "big")
#: Frames of the other shipped models' modalities: (dataset folder, model).
OTHER_MODALITIES = {"dic": ("hela-dic", "dic"), "nuclei": ("gowt1-fluo", "nuclei")}


def shared_data() -> Path:
    env = os.environ.get("CELLPROP_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def c2c12_frame() -> Path:
    shared = shared_data() / "c2c12-phase" / "images" / "0000.png"
    return shared if shared.is_file() else ROOT / "resources" / "samples" / "c2c12_0000.png"


def mosaic(image, shape: tuple[int, int]):
    """``image`` tiled to ``shape``, every other tile mirrored so that no seam is a jump."""
    import numpy as np

    reps = (-(-shape[0] // image.shape[0]), -(-shape[1] // image.shape[1]))
    rows = [
        np.hstack([image if (i + j) % 2 == 0 else image[:, ::-1] for j in range(reps[1])])
        for i in range(reps[0])
    ]
    return np.vstack(rows)[: shape[0], : shape[1]].copy()


def peak_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def central(image, side: int = 512):
    """The central ``side`` x ``side`` region of ``image`` (all of it where it is smaller)."""
    top, left = max(0, (image.shape[0] - side) // 2), max(0, (image.shape[1] - side) // 2)
    return image[top : top + side, left : left + side]


def run_case(
    case: str, model_name: str, margin: int | None = None, frame: Path | None = None
) -> dict:
    """One case, in this process; returns its figures."""
    import numpy as np
    from cellprop.engine import (
        Memo,
        Settings,
        estimate_diameter,
        keep_unreached,
        load_model,
        measure,
        read_image,
        segment,
    )
    from cellprop.engine.evaluate import compare_modes
    from cellprop.engine.features import EXPANDED, _ring_columns, neighbours

    def load(name: str):
        model = load_model(name)
        if margin is not None:  # a trial value instead of model.json's propagation margin
            model.defaults["propagation_margin_px"] = margin
        return model

    def timed_segment(image) -> dict:
        t0 = time.perf_counter()
        seg = segment(image, model, Settings())
        seconds = time.perf_counter() - t0
        outlined.append(seg.labels)
        # The cell table a batch writes and the app shows (every feature), after the labels.
        t0 = time.perf_counter()
        table = measure(seg.labels, image, centres=seg.centres)
        measured = time.perf_counter() - t0
        segmented_mb = peak_mb()  # segmenting and its table, before the timings below
        # Its neighbours alone: cells that touch (in the table above), within 5 px, and grown
        # until they meet.
        numbers = table.columns["ObjectNumber"]
        xy = np.column_stack(
            [table.columns["AreaShape_Center_X"], table.columns["AreaShape_Center_Y"]]
        )
        near = {}
        for distance in (0, 5, EXPANDED):
            t0 = time.perf_counter()
            neighbours(seg.labels, numbers, xy, distance=distance)
            near[distance] = round(time.perf_counter() - t0, 3)
        # A ring of 5 px around each cell, its intensity (--ring 5), alone.
        t0 = time.perf_counter()
        means = {"": table.columns["Intensity_MeanIntensity"]}
        _ring_columns(seg.labels, 5, numbers, [("", image)], means)
        ring = round(time.perf_counter() - t0, 3)
        return {
            "shape": list(image.shape),
            "seconds": round(seconds, 2),
            "cells": seg.n_cells,
            "stages": {k: round(v, 2) for k, v in seg.timings.items()},
            "measure_seconds": round(measured, 2),
            "peak_mb_segmented": round(segmented_mb, 1),
            "neighbours_seconds": near[0],
            "neighbours_within_5_seconds": near[5],
            "neighbours_expanded_seconds": near[EXPANDED],
            "ring_seconds": ring,
        }

    def timed_correction(image) -> dict:
        # The app's correction: the image segmented from its cells' centres and again from
        # them plus a click (the cells the click does not reach keep their outlines:
        # keep_unreached), with the Memo its first segmentation filled (as the window keeps
        # one), and without.
        h, w = image.shape
        memo = Memo()
        first = segment(image, model, Settings(), memo=memo)
        measure(first.labels, image, centres=first.centres, memo=memo.rows)
        centres = [*first.centres, (w / 2, h / 2)]

        def corrected(memo=None):
            # Each with the cell table measured after, as the window shows it.
            before = segment(image, model, Settings(), centres=first.centres, memo=memo)
            after = segment(image, model, Settings(), centres=centres, memo=memo)
            seg = keep_unreached(first.labels, first.centres, [], centres, before, after)
            measure(seg.labels, image, centres=seg.centres, memo=memo.rows if memo else None)

        t0 = time.perf_counter()
        corrected(memo)
        t1 = time.perf_counter()
        corrected()
        return {
            "correction_seconds": round(t1 - t0, 2),
            "correction_seconds_without_memo": round(time.perf_counter() - t1, 2),
        }

    def timed_estimate(image) -> dict:
        t0 = time.perf_counter()
        est = estimate_diameter(image, model)
        return {
            "estimate_seconds": round(time.perf_counter() - t0, 2),
            "estimated_diameter": est.diameter and round(est.diameter, 1),
            "model_diameter": round(est.model_diameter, 1),
        }

    def timed_track(labels) -> dict:
        # Following the cells to the next time point (--track), the frame's own cells moved
        # 3 px as the next one: what linking and the track columns cost per time point.
        import numpy as np
        from cellprop.engine.track import measure_tracks, track_frames

        frames = [labels, np.roll(labels, 3, axis=1)]
        tables = [measure(f) for f in frames]
        t0 = time.perf_counter()
        measure_tracks(track_frames(frames), tables)
        return {"track_seconds": round(time.perf_counter() - t0, 3)}

    outlined: list = []  # the labels of timed_segment's image
    model = load(model_name)
    base = peak_mb()
    cpu0 = time.process_time()
    out: dict = {
        "case": case,
        "model": model.name,
        "provider": model.provider,
        "margin_px": model.defaults.get("propagation_margin_px"),
        "baseline_mb": round(base, 1),
    }
    if case in ("c2c12", "big"):
        image = read_image(c2c12_frame()).pixels
        out["source"] = str(c2c12_frame())
        if case == "big":
            image = mosaic(image, (4096, 4096))
        out.update(timed_segment(image))
        if case == "c2c12":
            out.update(timed_estimate(image))
            out.update(timed_correction(image))
        out.update(timed_track(outlined[-1]))  # 2,500 cells on the big mosaic
    elif case in OTHER_MODALITIES:
        dataset, name = OTHER_MODALITIES[case]
        folder = shared_data() / dataset / "images"
        if not folder.is_dir():
            return {"case": case, "skipped": f"{folder} not found"}
        model = load(name)
        out.update(model=model.name, margin_px=model.defaults.get("propagation_margin_px"))
        frame = sorted(folder.iterdir())[0]
        out["source"] = f"{frame} as a 1040 x 1392 mosaic"
        image = mosaic(read_image(frame).pixels, (1040, 1392))
        out.update(timed_segment(image))
        out.update(timed_estimate(image))
        out.update(timed_correction(image))
    elif case == "modes":
        source = frame or c2c12_frame()
        out["source"] = str(source)
        image = central(read_image(source).pixels)
        res = compare_modes(image, model)
        res.pop("correlations")
        out.update({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()})
    out["peak_mb"] = round(peak_mb(), 1)
    # CPU seconds (all threads): unlike wall time, not inflated when other jobs share the cores.
    out["cpu_seconds"] = round(time.process_time() - cpu0, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="phase")
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-output")
    parser.add_argument(
        "--margin",
        type=int,
        default=None,
        help="crop margin (network pixels) instead of the model's, for trials",
    )
    parser.add_argument(
        "--frame",
        type=Path,
        default=None,
        help="image for the modes case instead of the C2C12 frame",
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)  # child process entry
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.model, args.margin, args.frame)))
        return 0

    results = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"cellprop benchmark: model {args.model}, {os.cpu_count()} CPU cores visible, "
        f"load average {load:.1f} at start (wall times stretch when other jobs share the cores)"
    )
    for case in args.only.split(","):
        t0 = time.perf_counter()
        extra = ["--margin", str(args.margin)] if args.margin is not None else []
        extra += ["--frame", str(args.frame)] if args.frame is not None else []
        child = subprocess.run(
            [sys.executable, __file__, "--case", case, "--model", args.model, *extra],
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            print(f"{case}: failed\n{child.stderr[-2000:]}")
            results.append({"case": case, "error": child.stderr[-2000:]})
            continue
        res = json.loads(child.stdout.strip().splitlines()[-1])
        res["wall_seconds"] = round(time.perf_counter() - t0, 1)
        results.append(res)
        report(res)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "bench.json" if args.margin is None else f"bench-margin{args.margin}.json"
    (args.out / name).write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {args.out / name}")
    return 0


def report(r: dict) -> None:
    case = r["case"]
    if "skipped" in r:
        print(f"\n[{case}] skipped: {r['skipped']}")
        return
    print(f"\n[{case}] model {r['model']} on {r['provider']}, crop margin {r.get('margin_px')} px")
    if "stages" in r:
        h, w = r["shape"]
        print(
            f"  image {w} x {h}: {r['seconds']:.2f} s ({r['cpu_seconds']:.1f} CPU s over all "
            f"threads), {r['cells']} cells, peak memory {r['peak_mb']:.0f} MB (after loading: "
            f"{r['baseline_mb']:.0f} MB; segmented and measured: "
            f"{r.get('peak_mb_segmented', r['peak_mb']):.0f} MB, the rest the timings below)"
        )
        print("  stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["stages"].items()))
    if "estimate_seconds" in r:
        print(
            f"  --diameter auto adds {r['estimate_seconds']:.2f} s: estimated "
            f"{r['estimated_diameter']} px (the model's own: {r['model_diameter']} px)"
        )
    if "measure_seconds" in r:
        print(
            f"  the cell table (every feature of every cell) takes {r['measure_seconds']:.2f} s more"
        )
    if "neighbours_seconds" in r:
        print(
            f"  of which the neighbours, cells that touch: {r['neighbours_seconds']:.3f} s "
            f"(within 5 px instead, --neighbour-distance 5: "
            f"{r['neighbours_within_5_seconds']:.3f} s; grown until they meet, "
            f"--neighbour-distance expand: {r['neighbours_expanded_seconds']:.3f} s)"
        )
    if "ring_seconds" in r:
        print(f"  a ring of 5 px around each cell (--ring 5): {r['ring_seconds']:.3f} s more")
    if "correction_seconds" in r:
        print(
            f"  a correction (one cell added at a click, its table measured) takes "
            f"{r['correction_seconds']:.2f} s "
            f"({r['correction_seconds_without_memo']:.2f} s without the image's memo)"
        )
    if "track_seconds" in r:
        print(f"  following its cells to the next time point (--track): {r['track_seconds']:.3f} s")
    if case == "modes":
        print(
            f"  512 x 512 region, {r['cells']} cells: propagation crop {r['seconds_crop']:.2f} s, "
            f"full {r['seconds_full']:.2f} s -> full/crop {r['ratio']:.1f}x"
        )
        print(
            f"  whole pipeline: crop {r['segment_seconds_crop']:.2f} s, full "
            f"{r['segment_seconds_full']:.2f} s -> "
            f"{r['segment_seconds_full'] / max(r['segment_seconds_crop'], 1e-9):.1f}x"
        )
        print(
            f"  per-cell map correlation near each cell: min {r['min']:.4f}, 5th percentile "
            f"{r['p05']:.4f}, median {r['median']:.4f}; labels mDice {r['labels_mdice']:.4f}"
        )
        print(f"  peak memory {r['peak_mb']:.0f} MB, {r['cpu_seconds']:.1f} CPU s in all")


if __name__ == "__main__":
    sys.exit(main())
