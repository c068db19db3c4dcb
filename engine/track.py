"""Following cells from page to page of a time-lapse: which cell of one time point each cell
of the next one is, which are new, and which are the daughters of a division.

Between two time points, each pair of cells that overlap (as CellProfiler's *TrackObjects*,
method *Overlap*, links them) or whose centres lie within ``max_move`` cell diameters is a
candidate, and the links are the one-to-one assignment of candidates that costs least in all
(as the linking step of a LAP tracker, TrackMate's and CellProfiler's, makes it; Jaqaman et
al. 2008): a link costs the distance its cell moved, in ``max_move`` reaches (an overlapping
pair farther than two reaches costing two), and a cell left unlinked 1.05, so that every
cell that can be linked is, the nearest way round for all of them together (taking the
best pair first, the way of this module until the twenty-ninth session, can leave a
cell's own successor to a neighbour that had another nearby). A cell left over that lies on
a cell already taken (two fifths of its area or
more, ``daughter_overlap``) is that cell's second daughter, if the two are alike in size
(``daughter_ratio``): at a division the mother's track ends and both daughters start tracks
of their own whose parent is the mother's (the challenge's convention). Every other cell
left over starts a new track. Once the next time point is linked too, a daughter that no
cell follows there was a piece that the outline split off its mother for one time point,
not a daughter (:func:`settle_divisions`). Then gaps are closed (:func:`close_gaps`, as
TrackMate's and CellProfiler's LAP trackers close them): a track that ends, its cell followed
by none, goes on with a cell that starts one (a new cell, no daughter) up to ``max_gap`` time
points later, where that cell's centre lies within ``max_move`` cell diameters a time point
of where the track was last seen (again the assignment of least cost in all): a cell the
segmentation missed at one time point, or a time point that failed, does not break its track
in two.

The functions are plain numpy and take label images (0 background, cells 1..n), so they serve
the command line, the app and the validation alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .features import centroids_and_areas

__all__ = [
    "LINK_COLUMNS",
    "TRACKS_CSV_COLUMNS",
    "TRACK_COLUMNS",
    "Links",
    "TrackSettings",
    "Tracker",
    "Tracks",
    "carry_links",
    "close_gaps",
    "follow_again",
    "follow_tables",
    "lineage",
    "link_frames",
    "links_from_tables",
    "measure_tracks",
    "number_tracks",
    "relatives",
    "relink",
    "same_centres",
    "settle_divisions",
    "table_tracks",
    "track_frames",
    "track_rows",
    "tracks_summary",
    "unlinked",
]

#: The columns following cells adds to each time point's cell table (CellProfiler's
#: *TrackObjects* names): the cell's track; the ``ObjectNumber`` at the time point before of
#: the cell it was, or divided from (0: a new cell); how far its centre moved from that
#: cell's (pixels, or the table's unit: ``TrackObjects_DistanceTraveled_um``); and at how
#: many time points its track has been seen, this one included; how many time points back
#: that cell was (CellProfiler's *GapLength*: 1 the time point before, 2 and more where the
#: track was missed in between and its gap closed; 0 a new cell, -1 one said by hand to
#: have come in, the window's *Cell Before* set to none, which no gap is closed to).
TRACK_COLUMNS = (
    "TrackObjects_Label",
    "TrackObjects_ParentObjectNumber",
    "TrackObjects_DistanceTraveled",
    "TrackObjects_Lifetime",
    "TrackObjects_GapLength",
)

#: tracks.csv's columns (in pixels; a calibrated run's lengths end in ``_um``), its header
#: where no cell was followed at all.
TRACKS_CSV_COLUMNS = (
    "Sequence",
    "Track",
    "Parent",
    "First_Image",
    "Last_Image",
    "First_Frame",
    "Last_Frame",
    "Frames",
    "Start_X",
    "Start_Y",
    "End_X",
    "End_Y",
    "Displacement",
    "PathLength",
    "Speed",
)

#: The track columns that say which cell each cell was, which a table measured anew keeps
#: (links mended by hand among them): its track, the cell it came from and how far back.
LINK_COLUMNS = (TRACK_COLUMNS[0], TRACK_COLUMNS[1], TRACK_COLUMNS[4])


@dataclass(frozen=True)
class TrackSettings:
    """How cells are followed.

    Attributes
    ----------
    max_move : float
        How far a cell may move between two time points without overlapping itself, in cell
        diameters (the median diameter of both time points' cells). Cells that overlap are
        candidates whatever the distance.
    daughter_overlap : float
        The share of a left-over cell's area that must lie on a cell of the time point before
        (one already followed by another cell) for it to count as that cell's daughter;
        chosen among 0.1-0.5 on HeLa DIC frames t000-t069 by the daughters cellprop's own
        outlines call there (README, *Following cells over time*).
    daughter_ratio : float
        How large the smaller of two daughters must be, as a share of the larger one's area:
        two daughters of a division are much alike, while an outline that cuts a piece off a
        cell makes two cells of unlike size, the piece being no daughter (the larger goes on
        with the track, the piece starts one). Chosen among 0-0.6 on the same frames: at 0.4,
        18 daughters called there and 16 of 18 right, against 22 and 16 with no such rule,
        with every true division in the masks themselves still found (0.5 loses two).
    max_gap : int
        How many time points in a row a track may be missed at and go on (gap closing,
        :func:`close_gaps`); 0: none, a cell missed at one time point starts a new track at
        the next.
    """

    max_move: float = 0.5
    daughter_overlap: float = 0.4
    daughter_ratio: float = 0.4
    max_gap: int = 1

    def __post_init__(self) -> None:
        if not self.max_move > 0:
            raise ValueError(f"cells must be let move some way, got {self.max_move} diameters")
        if self.max_gap < 0 or int(self.max_gap) != self.max_gap:
            raise ValueError(
                f"gaps closed must be a whole number of time points, 0 or more, got {self.max_gap}"
            )

    #: The settings a user chooses (``--max-move``, ``--max-gap``, the window's), recorded
    #: with a run that followed its cells: the others are the method's.
    CHOSEN = ("max_move", "max_gap")

    def record(self) -> dict:
        """The chosen settings (:data:`CHOSEN`), for run.json and a result's own."""
        return {name: getattr(self, name) for name in self.CHOSEN}

    @classmethod
    def of(cls, record: dict | None) -> TrackSettings:
        """Settings from a :meth:`record` (None, or names it lacks: the defaults')."""
        chosen = {k: v for k, v in (record or {}).items() if k in cls.CHOSEN and v is not None}
        return cls(**chosen)

    @classmethod
    def following(cls, track) -> TrackSettings | None:
        """How a batch given ``track`` (``process_batch``'s: False, True or settings)
        follows its cells: None where it does not, the defaults for True."""
        return track if isinstance(track, cls) else cls() if track else None


@dataclass(frozen=True)
class Links:
    """How the cells of one time point follow from those before: for cell ``k`` (label
    ``k``, at index ``k - 1``) ``source[k - 1]`` is the cell it was (0: none, a new cell),
    and ``daughter[k - 1]`` says that it is one of two cells a division of its source made.
    ``back[k - 1]``: how many followed time points before this one its source is (1, the
    one just before, unless a gap was closed: :func:`close_gaps`; 0 for a cell said by hand
    to have come in, :func:`relink` to none, which no gap is closed to); None: 1 for all."""

    source: np.ndarray
    daughter: np.ndarray
    back: np.ndarray | None = None

    def steps(self) -> np.ndarray:
        """How many followed time points back each cell's source is (1: the one before)."""
        if self.back is None:
            return np.ones(len(self.source), np.int64)
        return np.asarray(self.back, np.int64)


@dataclass
class Tracks:
    """Cells followed over time points.

    Attributes
    ----------
    labels : list of numpy.ndarray
        For each time point, the track of each cell (index ``k - 1`` for label ``k``), from 1.
    parents : dict
        Track -> the track it divided from (0: none).
    links : list of Links
        For each time point (the first has none: every source 0).
    """

    labels: list = field(default_factory=list)
    parents: dict = field(default_factory=dict)
    links: list = field(default_factory=list)

    @property
    def n_tracks(self) -> int:
        return len(self.parents)

    def spans(self) -> dict:
        """Track -> (first, last) time point it is seen at."""
        spans: dict = {}
        for t, tracks in enumerate(self.labels):
            for track in tracks.tolist():
                first, _ = spans.get(track, (t, t))
                spans[track] = (first, t)
        return spans


def link_frames(
    before: np.ndarray, after: np.ndarray, settings: TrackSettings | None = None
) -> Links:
    """Link the cells of ``after`` (a label image) to those of ``before`` (the time point
    before it, of the same shape). See the module's description for the rule."""
    from scipy.spatial import cKDTree

    settings = settings if settings is not None else TrackSettings()
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"time points of different sizes: {before.shape} and {after.shape}")
    n, m = int(before.max(initial=0)), int(after.max(initial=0))
    source = np.zeros(m, np.int64)
    daughter = np.zeros(m, bool)
    if n == 0 or m == 0:
        return Links(source, daughter)
    centres_b, areas_b = centroids_and_areas(before, n)
    centres_a, areas_a = centroids_and_areas(after, m)
    present = np.concatenate([areas_b[areas_b > 0], areas_a[areas_a > 0]])
    reach = settings.max_move * float(np.median(2 * np.sqrt(present / np.pi)))

    # overlap of every pair that overlaps at all: (before, after) -> pixels
    both = (before > 0) & (after > 0)
    pair = before[both].astype(np.int64) * (m + 1) + after[both]
    keys, counts = np.unique(pair, return_counts=True)
    firsts, seconds = np.divmod(keys, m + 1)
    overlap = {(int(i), int(j)): int(c) for i, j, c in zip(firsts, seconds, counts, strict=True)}
    found = np.isfinite(centres_b).all(axis=1), np.isfinite(centres_a).all(axis=1)
    index_b, index_a = np.flatnonzero(found[0]), np.flatnonzero(found[1])
    near = cKDTree(centres_b[index_b]).query_ball_tree(cKDTree(centres_a[index_a]), reach)
    pairs = set(overlap) | {
        (int(index_b[k]) + 1, int(index_a[q]) + 1) for k, js in enumerate(near) for q in js
    }
    i, j = np.array(sorted(pairs), np.int64).reshape(-1, 2).T
    moved = np.hypot(*(centres_b[i - 1] - centres_a[j - 1]).T) / max(reach, 1e-9)
    taken_b: dict = {}
    for b, a in _assign(i - 1, j - 1, np.minimum(moved, 2.0), n, m):
        taken_b[b + 1] = a + 1
        source[a] = b + 1
    # a cell left over on a cell already followed: its second daughter (of the mother it
    # overlaps most, among cells not yet mothers)
    iou = {(i, j): c / (areas_b[i - 1] + areas_a[j - 1] - c) for (i, j), c in overlap.items()}
    mothers: dict = {}
    claimed: set = set()  # a cell left over is one mother's daughter, not two mothers'
    for i, j in sorted(overlap, key=lambda p: (-iou[p], p)):
        if source[j - 1] or i not in taken_b or i in mothers or j in claimed:
            continue
        on_it = overlap.get((i, j), 0) / areas_a[j - 1]
        if on_it >= settings.daughter_overlap:
            mothers[i] = j
            claimed.add(j)
    for i, j in mothers.items():
        first = taken_b[i]
        small, large = sorted((j, first), key=lambda k: (areas_a[k - 1], k))
        if areas_a[small - 1] < settings.daughter_ratio * areas_a[large - 1]:
            # a piece cut off, not a division: the larger cell goes on with the track
            source[small - 1], source[large - 1] = 0, i
            continue
        source[j - 1] = i
        daughter[j - 1] = True
        daughter[first - 1] = True
    return Links(source, daughter)


#: What leaving a cell unlinked costs in :func:`_assign`, against a link's cost of 0-2 (the
#: distance moved in reaches): above half the dearest link, so that two cells that can be
#: linked always are (Jaqaman et al. 2008 take 1.05 times the dearest link for each).
UNLINKED = 1.05


def _assign(i: np.ndarray, j: np.ndarray, cost: np.ndarray, n: int, m: int) -> list:
    """The one-to-one links among the candidate pairs ``(i[k], j[k])`` (cells of the time
    point before, 0..n-1, and after, 0..m-1) that cost least in all, a cell left unlinked
    costing :data:`UNLINKED`: pairs (before, after) of those linked. A LAP tracker's linking
    matrix (Jaqaman et al. 2008), kept sparse: before cells and "none" against after cells
    and "none"; a cell against "none" costs :data:`UNLINKED`, "none" against "none" nothing
    where the pair is a candidate (every cell may go unlinked, so a full matching exists).
    scipy's minimum weight full bipartite matching (LAPJVsp) needs weights other than 0:
    every weight is 1 more, which changes no full matching's order."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    rows = np.concatenate([i, np.arange(n), n + j, n + np.arange(m)])
    cols = np.concatenate([j, m + np.arange(n), m + i, np.arange(m)])
    alone = np.full(n + m, UNLINKED)
    weights = np.concatenate([cost, alone[:n], np.zeros(len(cost)), alone[n:]]) + 1.0
    graph = coo_matrix((weights, (rows, cols)), shape=(n + m, n + m)).tocsr()
    before, after = min_weight_full_bipartite_matching(graph)
    linked = (before < n) & (after < m)
    return list(zip(before[linked].tolist(), after[linked].tolist(), strict=True))


def _daughters(source: np.ndarray) -> np.ndarray:
    """Which cells are daughters: those that share the cell they came from with another
    (:func:`link_frames` links a cell to one cell before, or two daughters to their mother)."""
    source = np.asarray(source, np.int64)
    counts = np.bincount(source, minlength=1)
    return (source > 0) & (counts[source] >= 2)


def relink(links: Links, cell: int, came_from: int, n_before: int) -> Links:
    """The links of a time point with cell ``cell`` (its label) mended by hand: it was cell
    ``came_from`` of the time point before, of ``n_before`` cells (0: none, a new cell).
    Cells that share the cell they came from are its daughters (a division); the cell left
    alone where two were goes on with its mother's track. A cell said to have come in is
    kept from gap closing (:func:`close_gaps`): it starts a track.

    Raises
    ------
    ValueError
        ``cell`` is not one of the time point's cells, or ``came_from`` not one before.
    """
    source = np.asarray(links.source, np.int64).copy()
    if not 1 <= cell <= len(source):
        raise ValueError(f"no cell {cell} here (its cells are 1 to {len(source)})")
    if not 0 <= came_from <= n_before:
        cells = f"its cells are 1 to {n_before}" if n_before else "it has no cell"
        raise ValueError(
            f"no cell {came_from} at the time point before ({cells}; 0: none, a new cell)"
        )
    source[cell - 1] = came_from
    back = links.steps().copy()
    back[cell - 1] = 1 if came_from else 0  # said to have come in: no gap closed to it
    return Links(source, _daughters(source), back)


def follow_again(
    recorded: Links,
    before: np.ndarray,
    after: np.ndarray,
    was: TrackSettings,
    settings: TrackSettings,
) -> Links | None:
    """The links of a time point (label images ``before`` and ``after``) followed again
    with ``settings``, where its table records links (``recorded``,
    :func:`links_from_tables`) that a run made with ``was``: the links mended by hand (the
    window's *Cell Before*, a cell said to have come in, links kept through a correction)
    are those recorded otherwise than ``was`` links the labels (:func:`link_frames`), and
    stay; every other cell is linked anew. None where none was mended (link it anew). A
    cell recorded as new where ``was`` makes it a daughter is linked anew too: a piece split
    off its mother, settled so (:func:`settle_divisions`) as it will be again; gaps are
    closed again afterwards (:func:`close_gaps`): a cell a gap was closed to reads as new
    (:func:`links_from_tables`), as ``was`` made it."""
    source = np.asarray(recorded.source, np.int64)
    made = link_frames(before, after, was)
    piece = (source == 0) & made.daughter & (recorded.steps() == 1)
    said_new = recorded.steps() == 0  # said by hand to have come in: no gap closed to it
    mended = ((source != made.source) & ~piece) | said_new
    if not mended.any():
        return None
    links, n_before = link_frames(before, after, settings), int(before.max(initial=0))
    for cell in np.flatnonzero(mended) + 1:
        links = relink(links, int(cell), int(source[cell - 1]), n_before)
    return links


def same_centres(was: np.ndarray, now: np.ndarray, tolerance: float = 0.01) -> np.ndarray:
    """Which cell each cell of a time point was before it was corrected, by its centre: for
    each of ``now``'s centres (x, y; label ``k`` at index ``k - 1``) the label of the cell of
    ``was`` at the same place (within ``tolerance`` pixels), 0 where none was (a cell the
    correction added). A correction outlines the image again from the centres it keeps, so
    a cell it left alone keeps its centre (and its number may change)."""
    from scipy.spatial import cKDTree

    was = np.reshape(np.asarray(was, float), (-1, 2))
    now = np.reshape(np.asarray(now, float), (-1, 2))
    same = np.zeros(len(now), np.int64)
    if not len(was) or not len(now):
        return same
    distance, index = cKDTree(was).query(now, distance_upper_bound=tolerance)
    hit = np.isfinite(distance)
    same[hit] = index[hit] + 1
    return same


def carry_links(kept: Links, fresh: Links, before: np.ndarray, after: np.ndarray) -> Links:
    """The links of a time point linked again after a correction of it or of the time point
    before, holding those of the cells the correction left alone.

    ``kept`` are the links as they were (in the cell numbers before the correction),
    ``fresh`` the time points linked anew (:func:`link_frames`, in today's numbers);
    ``before`` and ``after`` say, for each cell of the time point before and of this one,
    which cell it was when ``kept`` was made (0: one the correction added;
    :func:`same_centres`; a time point not corrected maps each cell to itself). A cell that
    was there keeps the cell it came from while that one is still there (a link mended by
    hand stays mended), and stays a new cell where it was one unless it is now followed from
    a cell the correction added. Every other cell takes its fresh link, but one that would
    take a cell another keeps, without the fresh links calling it a daughter, starts a track
    of its own: a cell added beside one left alone does not take its track. A cell said by
    hand to have come in (``back`` 0) stays so while it follows from none."""
    before = np.asarray(before, np.int64)
    after = np.asarray(after, np.int64)
    fresh_source = np.asarray(fresh.source, np.int64)
    if len(after) != len(fresh_source):
        raise ValueError(f"{len(after)} cells mapped, {len(fresh_source)} linked")
    kept_source = np.asarray(kept.source, np.int64)
    now_of = np.zeros(
        max(int(before.max(initial=0)), int(kept_source.max(initial=0))) + 1, np.int64
    )
    now_of[before[before > 0]] = np.flatnonzero(before > 0) + 1  # cell then -> cell now
    source = np.zeros(len(after), np.int64)
    decided = np.zeros(len(after), bool)
    for k, was in enumerate(after.tolist()):
        if not was or was > len(kept_source):
            continue
        came_from = int(kept_source[was - 1])
        if came_from:
            if now_of[came_from]:
                source[k], decided[k] = now_of[came_from], True
        elif not fresh_source[k] or before[fresh_source[k] - 1]:
            decided[k] = True  # a new cell, and nothing the correction added before it
    taken = set(source[decided & (source > 0)].tolist())
    for k in np.flatnonzero(~decided).tolist():
        came_from = int(fresh_source[k])
        if came_from in taken and not fresh.daughter[k]:
            came_from = 0
        source[k] = came_from
    back = np.ones(len(after), np.int64)
    said_new = kept.steps() == 0  # said by hand to have come in: still so where still new
    for k, was in enumerate(after.tolist()):
        if was and was <= len(said_new) and said_new[was - 1] and not source[k]:
            back[k] = 0
    return Links(source, _daughters(source), back)


def settle_divisions(
    links: list[Links], leave: Iterable[int] = (), keep: dict | None = None
) -> list[Links]:
    """Links of consecutive time points with every division settled by the time point after
    it: a daughter that no cell of the next time point follows was a piece that the outline
    split off its mother for one time point (it merged back, or was never a cell), not a
    daughter; it starts a track of its own and its sister goes on with the mother's (as
    :func:`relink` to none). A division at the last time point, or before one that follows
    from none of its cells (a gap), stays, as do those at the time points ``leave`` (indexes
    into ``links``: links mended by hand), and those of the cells ``keep`` gives for a time
    point ({index: cells' bool mask}: a time point linked anew but for its mended cells). On the HeLa DIC frames (README, *Following cells
    over time*): no daughter called on the tune frames t000-t069, nor in the masks, is one
    such; on the test frames t070-t083 all six false daughters were."""
    settled = list(links)
    kept = set(leave)
    for t in range(len(settled) - 1):
        step, after = settled[t], np.asarray(settled[t + 1].source, np.int64)
        if t in kept or not step.daughter.any() or not after.any():
            continue
        followed = np.zeros(len(step.source) + 1, bool)
        followed[after] = True
        pieces = step.daughter & ~followed[1:]
        if keep and t in keep:
            pieces &= ~np.asarray(keep[t], bool)
        if pieces.any():
            source = np.where(pieces, 0, np.asarray(step.source, np.int64))
            settled[t] = Links(source, _daughters(source), step.back)
    return settled


def unlinked(n: int) -> Links:
    """The links of a time point whose ``n`` cells follow from none (the first of a
    time-lapse, or the first after a gap or a change of size)."""
    return Links(np.zeros(n, np.int64), np.zeros(n, bool))


def close_gaps(
    links: list[Links],
    centres: list,
    areas: list,
    times: list | None = None,
    settings: TrackSettings | None = None,
    breaks: Iterable[int] = (),
) -> list[Links]:
    """Links of consecutive followed time points with their gaps closed: a track that ends
    (its cell followed by no cell of the next time point: not seen there, or that time point
    failed) goes on with a cell that starts a track (a new cell, not a daughter) at most
    ``settings.max_gap`` time points missed later, where the two centres lie within
    ``max_move`` cell diameters a time point (the median diameter of both time points'
    cells, as :func:`link_frames` reaches between two). The gaps closed are the one-to-one
    assignment of such pairs that costs least in all (:func:`_assign`, as a LAP tracker's
    gap-closing step): a pair costs the distance in reaches, plus one for each time point
    missed beyond the first, so that a shorter gap goes first wherever it can.

    ``centres`` and ``areas``: each time point's cells' centres ((n, 2) of x, y, pixels) and
    areas (pixels); ``times``: the time points' numbers (default 0, 1, ...: a time point
    missing from them is one missed); ``breaks``: indexes into ``links`` that start anew (a
    field of another size), across which no gap is closed. Only cells that follow from none
    are joined, and none said by hand to have come in (``Links.back`` 0, :func:`relink`): the
    links given stay as they are."""
    settings = settings if settings is not None else TrackSettings()
    links = list(links)
    times = list(range(len(links))) if times is None else [int(t) for t in times]
    if settings.max_gap < 1 or len(links) < 2:
        return links
    from scipy.spatial import cKDTree

    cut = sorted(set(breaks))
    xy = [np.reshape(np.asarray(c, float), (-1, 2)) for c in centres]
    size = [np.asarray(a, float) for a in areas]
    # the cells whose track ends at each time point: no cell of the next one came from them
    ends = []
    for t, step in enumerate(links):
        ended = np.ones(len(step.source), bool)
        if t + 1 < len(links):
            after = links[t + 1]
            came = (np.asarray(after.source, np.int64) > 0) & (after.steps() == 1)
            ended[np.asarray(after.source, np.int64)[came] - 1] = False
        ends.append(ended & np.isfinite(xy[t]).all(axis=1))
    candidates = []
    for u in range(1, len(links)):
        starts = np.flatnonzero(
            (np.asarray(links[u].source, np.int64) == 0)
            & (links[u].steps() > 0)  # not said by hand to have come in
            & np.isfinite(xy[u]).all(axis=1)
        )
        if not len(starts):
            continue
        for s in range(u - 1, -1, -1):
            missed = times[u] - times[s] - 1
            if missed > settings.max_gap or any(s < b <= u for b in cut):
                break
            if missed < 1 or not ends[s].any():
                continue
            present = np.concatenate([size[s][size[s] > 0], size[u][size[u] > 0]])
            diameter = float(np.median(2 * np.sqrt(present / np.pi)))
            reach = settings.max_move * diameter * (times[u] - times[s])
            index = np.flatnonzero(ends[s])
            near = cKDTree(xy[s][index]).query_ball_point(xy[u][starts], reach)
            for j, found in zip(starts.tolist(), near, strict=True):
                for q in found:
                    i = int(index[q])
                    d = float(np.hypot(*(xy[s][i] - xy[u][j]))) / max(reach, 1e-9)
                    candidates.append((missed - 1 + d, (u, j), (s, i)))
    if not candidates:
        return links
    cost, late, early = zip(*candidates, strict=True)  # (u, j) starting, (s, i) ended
    new_cells, lost = sorted(set(late)), sorted(set(early))
    new_at, lost_at = {c: k for k, c in enumerate(new_cells)}, {c: k for k, c in enumerate(lost)}
    pairs = _assign(
        np.array([lost_at[c] for c in early], np.int64),
        np.array([new_at[c] for c in late], np.int64),
        np.asarray(cost) * 2 / settings.max_gap,  # 0 .. 2, as _assign's costs
        len(lost),
        len(new_cells),
    )
    sources = [np.asarray(step.source, np.int64).copy() for step in links]
    backs = [step.steps().copy() for step in links]
    joined = set()
    for e, b in pairs:
        (s, i), (u, j) = lost[e], new_cells[b]
        joined.add(u)
        sources[u][j], backs[u][j] = i + 1, u - s
    return [
        Links(sources[u], step.daughter, backs[u]) if u in joined else step
        for u, step in enumerate(links)
    ]


def _table_cells(table) -> tuple[np.ndarray, np.ndarray]:
    """A cell table's centres ((n, 2) of x, y, pixels) and areas (pixels)."""
    columns = table.columns
    n = len(table)
    if not n or "AreaShape_Center_X" not in columns:
        return np.full((n, 2), np.nan), np.zeros(n)
    xy = np.column_stack(
        [
            np.asarray(columns["AreaShape_Center_X"], float),
            np.asarray(columns["AreaShape_Center_Y"], float),
        ]
    )
    # a calibrated table's areas are in its unit (AreaShape_Area_um2): back into pixels
    size = float(table.pixel_size) if table.pixel_size else None
    named = f"AreaShape_Area_{table.unit or 'um'}2"
    if size and named in columns:
        areas = np.asarray(columns[named], float) / size**2
    elif "AreaShape_Area" in columns:
        areas = np.asarray(columns["AreaShape_Area"], float)
    elif {"AreaShape_BoundingBoxMinimum_X", "AreaShape_BoundingBoxMaximum_Y"} <= set(columns):
        # its calibration unknown: the boxes' (pixels) say how large the cells are
        wide = np.asarray(columns["AreaShape_BoundingBoxMaximum_X"], float) - np.asarray(
            columns["AreaShape_BoundingBoxMinimum_X"], float
        )
        tall = np.asarray(columns["AreaShape_BoundingBoxMaximum_Y"], float) - np.asarray(
            columns["AreaShape_BoundingBoxMinimum_Y"], float
        )
        areas = np.pi / 4 * wide * tall
    else:
        areas = np.zeros(n)
    return xy, areas


def follow_tables(
    links: list[Links],
    tables: list,
    times: list | None = None,
    settings: TrackSettings | None = None,
    breaks: Iterable[int] = (),
) -> Tracks:
    """The tracks of a time-lapse's followed time points from their links (divisions settled
    already) and cell tables: its gaps closed by the cells' centres (:func:`close_gaps`),
    numbered (:func:`number_tracks`). What a batch, the window and an export number a
    time-lapse's tracks with."""
    cells = [_table_cells(table) for table in tables]
    closed = close_gaps(
        links, [c for c, _ in cells], [a for _, a in cells], times, settings, breaks
    )
    return number_tracks(closed)


def _extend(tracks: Tracks, links: Links, first_track: int) -> np.ndarray:
    """Number the cells of the next time point from its links to those before (the last of
    ``tracks``, extended in place, or further back where a gap was closed): a cell that was
    one goes on with its track, a new cell or a daughter starts one (a daughter's parent: its
    mother's track)."""
    ids = np.zeros(len(links.source), np.int64)
    source = np.asarray(links.source, np.int64).tolist()
    for k, (came_from, back) in enumerate(zip(source, links.steps().tolist(), strict=True)):
        was = int(tracks.labels[-back][came_from - 1]) if came_from else 0
        if came_from and not links.daughter[k]:
            ids[k] = was
            continue
        ids[k] = first_track + len(tracks.parents)
        tracks.parents[int(ids[k])] = was
    tracks.labels.append(ids)
    tracks.links.append(links)
    return ids


def number_tracks(links: Iterable[Links], first_track: int = 1) -> Tracks:
    """The tracks that the links of consecutive time points make (numbered from
    ``first_track`` as the cells that start them come, time point by time point)."""
    tracks = Tracks()
    for step in links:
        _extend(tracks, step, first_track)
    return tracks


def links_from_tables(tables: list) -> list[Links]:
    """The links of time points whose cell tables carry :data:`TRACK_COLUMNS` (the cells of
    a run that followed them, read back), so that one time point can be linked again, after
    a correction, without linking every other; a table without them gets :func:`unlinked`.
    A cell is a daughter where it shares the cell it came from with another (so that the
    links do not depend on how the tracks were numbered when the table was measured). A
    cell that came from one further back (``TrackObjects_GapLength`` over 1: a gap closed)
    reads as a new cell here, its gap to be closed again (:func:`follow_tables`); one said by
    hand to have come in (``TrackObjects_GapLength`` -1) as one that no gap is closed to."""
    found: list[Links] = []
    before = np.zeros(0, np.int64)
    for table in tables:
        columns = table.columns
        n = len(table)
        ids = columns.get("TrackObjects_Label")
        sources = columns.get("TrackObjects_ParentObjectNumber")
        if ids is None or sources is None or len(ids) != n or len(sources) != n:
            found.append(unlinked(n))
            before = np.zeros(0, np.int64)
            continue
        source = np.asarray(sources, np.int64)
        gaps = columns.get(TRACK_COLUMNS[4])
        gaps = np.asarray(gaps, float) if gaps is not None and len(gaps) == n else np.zeros(n)
        source = np.where(gaps > 1, 0, source)
        if n and (source.min() < 0 or source.max() > len(before)):  # not the table before's
            source = np.zeros(n, np.int64)
        said_new = (gaps < 0) & (source == 0)
        back = np.where(said_new, 0, 1) if said_new.any() else None
        found.append(Links(source, _daughters(source), back))
        before = np.asarray(ids, np.int64)
    return found


def lineage(tables: list) -> dict:
    """{track: the track it divided from} of time points whose cell tables carry
    :data:`TRACK_COLUMNS` (in time order, as :func:`links_from_tables` reads them), by the
    tables' own track numbers; tracks that did not divide from one are left out."""
    parents: dict = {}
    before = np.zeros(0, np.int64)
    for table, step in zip(tables, links_from_tables(tables), strict=True):
        ids = np.asarray(table.columns.get("TrackObjects_Label", []), np.int64)
        for k in np.flatnonzero(step.daughter).tolist():
            parents[int(ids[k])] = int(before[step.source[k] - 1])
        before = ids
    return parents


def relatives(tracks: Iterable[int], parents: dict) -> set:
    """``tracks`` with their ancestors (mother, grandmother, ...) and descendants
    (daughters, granddaughters, ...), ``parents`` as :func:`lineage` gives them; a sister
    is not a relative here (nor her daughters)."""
    children: dict = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found = set(tracks)
    for track in list(found):
        up = parents.get(track, 0)
        while up and up not in found:
            found.add(up)
            up = parents.get(up, 0)
        down = list(children.get(track, []))
        while down:
            child = down.pop()
            if child not in found:
                found.add(child)
                down += children.get(child, [])
    return found


class Tracker:
    """Follows cells one time point at a time (:meth:`add`), holding only the time point
    before: a long time-lapse's label images are read, followed and let go one by one."""

    def __init__(self, settings: TrackSettings | None = None, first_track: int = 1):
        self.settings = settings
        self.first_track = first_track
        self.tracks = Tracks()
        self._previous: np.ndarray | None = None

    def add(self, labels: np.ndarray, links: Links | None = None) -> np.ndarray:
        """Follow the cells of the next time point into it; returns each one's track.
        ``links``: how they follow from the time point before, known already (a run's own
        tables read back, links mended by hand among them), instead of linking them."""
        labels = np.asarray(labels)
        n = int(labels.max(initial=0))
        if self._previous is None:  # (given links of none: cells said to have come in)
            if links is None or len(links.source) != n or np.any(links.source):
                links = unlinked(n)
        elif links is None or len(links.source) != n:
            links = link_frames(self._previous, labels, self.settings)
        self._previous = labels
        return _extend(self.tracks, links, self.first_track)

    def restart(self) -> None:
        """The next time point follows from none (a gap, or another size of image): its
        cells start new tracks, numbered on from those so far."""
        self._previous = None


def track_frames(
    frames: Iterable[np.ndarray], settings: TrackSettings | None = None, first_track: int = 1
) -> Tracks:
    """Follow the cells of consecutive time points (label images, in time order): each
    cell's track (numbered from ``first_track``), each track's parent (``Tracks``), the
    divisions settled by the time point after them (:func:`settle_divisions`), the gaps
    closed (:func:`close_gaps`). The frames are taken one at a time (:class:`Tracker`), so
    an iterator that reads them from files holds two in memory."""
    tracker = Tracker(settings, first_track)
    centres, areas = [], []  # each time point's cells', for the gaps
    for labels in frames:
        tracker.add(labels)
        xy, area = centroids_and_areas(np.asarray(labels), len(tracker.tracks.labels[-1]))
        centres.append(xy)
        areas.append(area)
    settled = settle_divisions(tracker.tracks.links)
    closed = close_gaps(settled, centres, areas, settings=settings)
    return number_tracks(closed, first_track)


def measure_tracks(tracks: Tracks, tables: list, times: list | None = None) -> list[dict]:
    """Add :data:`TRACK_COLUMNS` to each time point's cell table (``tables``, CellTable, in
    the order of ``tracks``; changed in place) and describe each track: a dict per track
    with ``Track``, ``Parent`` (the track it divided from, 0: none), ``First_Frame`` and
    ``Last_Frame`` (``times``: the time points' numbers, pages of a file or frames of a
    folder; default 0, 1, ...), ``Frames`` (how many it is seen at, fewer than it spans
    where a gap was closed),
    ``Start_X/Y`` and ``End_X/Y`` (pixels), ``Displacement`` (start to end),
    ``PathLength`` (the sum of its moves) and ``Speed`` (path length per time point), the last
    three in pixels or, where the tables are calibrated, ``_um`` (their unit)."""
    times = list(range(len(tables))) if times is None else list(times)
    if not tables:
        return []
    size = tables[0].pixel_size
    suffix = f"_{tables[0].unit or 'um'}" if size else ""
    per_px = float(size) if size else 1.0
    seen: dict = {}  # track -> [first time, last time, times seen, start xy, end xy, path]
    where: list = []  # each time point's centres so far
    for t, (ids, links, table) in enumerate(zip(tracks.labels, tracks.links, tables, strict=True)):
        n = len(ids)
        if len(table) != n:
            raise ValueError(
                f"time point {times[t]}: {len(table)} cells in its table, {n} in its labels"
            )
        xy = _table_cells(table)[0]
        where.append(xy)
        source, back = np.asarray(links.source, np.int64), links.steps()
        moved = np.zeros(n)
        gap = np.zeros(n, np.int64)
        gap[(source == 0) & (back == 0)] = -1  # said by hand to have come in
        for b in np.unique(back[source > 0]).tolist():  # 1, and where gaps were closed
            came = (source > 0) & (back == b)
            moved[came] = np.hypot(*(xy[came] - where[t - b][source[came] - 1]).T)
            gap[came] = times[t] - times[t - b]
        lifetime = np.zeros(n, np.int64)
        for k, track in enumerate(ids.tolist()):
            entry = seen.get(track)
            if entry is None:
                entry = seen[track] = [times[t], times[t], 0, xy[k], xy[k], 0.0]
            else:
                entry[5] += moved[k]
            entry[1], entry[4] = times[t], xy[k]
            entry[2] += 1
            lifetime[k] = entry[2]
        table.columns["TrackObjects_Label"] = np.asarray(ids, np.int64)
        table.columns["TrackObjects_ParentObjectNumber"] = source
        distance = f"TrackObjects_DistanceTraveled{suffix}"
        older = [n for n in table.columns if n.startswith("TrackObjects_DistanceTraveled")]
        for stale in [n for n in older if n != distance]:
            del table.columns[stale]  # followed before, in other units
        table.columns[distance] = moved * per_px  # followed again: where it was
        table.columns["TrackObjects_Lifetime"] = lifetime
        table.columns["TrackObjects_GapLength"] = gap
        for name in (*TRACK_COLUMNS[:2], distance, *TRACK_COLUMNS[3:]):  # in this order,
            table.columns[name] = table.columns.pop(name)  # whatever a table carried
    rows = []
    for track, (first, last, pages, start, end, path) in sorted(seen.items()):
        rows.append(
            {
                "Track": track,
                "Parent": tracks.parents.get(track, 0),
                "First_Frame": first,
                "Last_Frame": last,
                "Frames": pages,
                "Start_X": float(start[0]),
                "Start_Y": float(start[1]),
                "End_X": float(end[0]),
                "End_Y": float(end[1]),
                f"Displacement{suffix}": float(np.hypot(*(end - start))) * per_px,
                f"PathLength{suffix}": path * per_px,
                f"Speed{suffix}": path * per_px / max(last - first, 1),
            }
        )
    return rows


def track_rows(sequence: str, tracks: Tracks, tables: list, times: list, names: list) -> list:
    """tracks.csv's rows for one time-lapse: :func:`measure_tracks` (which adds the track
    columns to ``tables``) with the time-lapse's name (``Sequence``) first and the names of
    the images each track is first and last seen in (``names``, one per time point)."""
    image = dict(zip(times, names, strict=True))
    rows = []
    for row in measure_tracks(tracks, tables, times):
        head = {"Sequence": sequence, "Track": row.pop("Track"), "Parent": row.pop("Parent")}
        head.update(First_Image=image[row["First_Frame"]], Last_Image=image[row["Last_Frame"]])
        rows.append({**head, **row})
    return rows


def table_tracks(table, n_cells: int) -> np.ndarray:
    """Each cell's track, from a cell table's ``TrackObjects_Label`` (cells followed over
    time), where it fits the ``n_cells`` cells and holds whole numbers (a table typed over
    by hand may not); empty otherwise. The window colours cells by it, and an overlay PNG
    numbers them by it (``write_overlay(numbers=...)``)."""
    columns = getattr(table, "columns", None) or {}
    tracks = columns.get(TRACK_COLUMNS[0])
    if tracks is None or len(tracks) != n_cells:
        return np.zeros(0, np.int64)
    values = np.asarray(tracks, float)
    if not (np.isfinite(values).all() and (values % 1 == 0).all()):
        return np.zeros(0, np.int64)
    return values.astype(np.int64)


def tracks_summary(path: str | Path) -> str:
    """What a run's tracks.csv (:func:`track_rows`) says, in a line: how many tracks, how many
    cells divided, and how many tracks run from the first time point of their time-lapse to
    its last. OSError or ValueError where the file cannot be read as one."""
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    try:
        mothers = {(r["Sequence"], r["Parent"]) for r in rows if r["Parent"] not in ("", "0")}
        frames = [(r["Sequence"], int(r["First_Frame"]), int(r["Last_Frame"])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a tracks.csv ({exc})") from exc
    span: dict = {}
    for sequence, first, last in frames:
        start, end = span.get(sequence, (first, last))
        span[sequence] = (min(start, first), max(end, last))
    # (a time-lapse of one time point: a single image, a 3-D stack's slice; nothing followed)
    followed = [f for f in frames if span[f[0]][0] != span[f[0]][1]]
    whole = sum((first, last) == span[sequence] for sequence, first, last in followed)
    if not followed:
        return (
            "no cell followed: each time-lapse given has one time point (the pages of a "
            "multi-page file are its time points with --page all, but for the slices of a "
            "3-D stack) -> tracks.csv"
        )
    return (
        f"{len(followed)} tracks followed ({len(mothers)} division(s); {whole} from the first "
        "time point to the last) -> tracks.csv"
    )
