"""Time-lapses in the window: which results are the time points of one time-lapse whose
cells a batch followed (a file's pages, or a folder's images: ``Result.sequence``), the
*Over time* tab's tables, stepping between time points with the cells selected by their
tracks (through divisions), and a corrected time point followed again; a part of
:class:`~.controller.AppController`."""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from . import render
from .corrections import UNDO_DEPTH, trim_undo
from .state import Document, Result, sequence_key, time_lapses


def _beside(was: Result, results: list, i: int, engine) -> tuple | None:
    """What going back to ``was``, the result just replaced at time point ``i`` of
    ``results``, restores of the time point after it: a weak reference to that result, and
    the links into it from ``was``'s cells (None at the last time point)."""
    if i + 1 >= len(results):
        return None
    out = engine.links_from_tables([was.table, results[i + 1].table])[1]
    # a copy: the table's columns it may share are written anew when tracks are numbered
    out = replace(out, source=out.source.copy(), daughter=out.daughter.copy())
    return weakref.ref(results[i + 1]), out


def _restored(result: Result, results: list, i: int, links: list) -> list:
    """``[i + 1]`` where ``result``, back at time point ``i`` of ``results``, left the very
    result that is at the time point after it now (its cells the same): the links into that
    one are set in ``links`` as they were then (``Result.beside``); else none."""
    if result.beside is None or i + 1 >= len(results):
        return []
    after, out = result.beside
    if after() is not results[i + 1]:
        return []
    links[i + 1] = out
    return [i + 1]


def track_column(result) -> np.ndarray:
    """Each cell of a result's track (none where its cells were not followed)."""
    if result is None:
        return np.zeros(0, np.int64)
    return render.track_numbers(result.table, result.n_cells)


def tracks_of(result, cells) -> set:
    """The tracks of these cells of a result (none where its cells were not followed)."""
    column = track_column(result)
    return {int(column[k - 1]) for k in cells if 0 < k <= len(column)}


def _labels_of(result: Result, engine) -> np.ndarray | None:
    """A result's labels, read back from its file where parked (None: gone or damaged)."""
    if result.labels is not None:
        return result.labels
    try:
        return engine.read_labels(result.labels_file)
    except (OSError, ValueError, TypeError):
        return None


def followed_links(engine, tables: list, times: list) -> list:
    """The links of a followed time-lapse's time points (``times``) read from their tables
    (engine ``links_from_tables``), none into a time point that is not among them (closed
    in the window: the cells after it are linked anew, a gap closed across it)."""
    links = engine.links_from_tables(tables)
    for k in range(1, len(tables)):
        if times[k - 1] != times[k] - 1:
            links[k] = engine.unlinked(len(tables[k]))
    return links


def field_breaks(engine, results: list) -> list[int]:
    """The indexes of a time-lapse's results (in time order) whose labels are of another size
    than those before: another field, where every track starts anew, as a batch follows
    them (engine ``follow_tables``' ``breaks``); sizes read from the labels' file headers
    where parked."""
    sizes = []
    for r in results:
        if r.labels is not None:
            sizes.append(tuple(r.labels.shape[:2]))
        elif r.labels_file is not None:
            sizes.append(engine.plane_size(r.labels_file))
        else:
            sizes.append(None)
    known = [(k, size) for k, size in enumerate(sizes) if size is not None]
    return [k for (_, a), (k, b) in zip(known, known[1:], strict=False) if a != b]


class TimeLapseMixin:
    """The controller's time-lapses (its state lives in ``AppController.__init__``)."""

    @property
    def selected_tracks(self) -> set:
        """The tracks of the cells selected (none where the cells were not followed), and those
        selected at an earlier time point that the one shown missed (held until found again)."""
        result = self.current.result if self.current else None
        return tracks_of(result, self.selected_cells) | self._held_tracks

    def time_lapse(self) -> tuple[dict, int, int, bool]:
        """The time-lapse of the image shown, for *Over time*: {time point: cell table} of
        its segmented time points, how many time points it has, the one shown, and whether
        they are pages of its file (else images of a folder whose cells a batch followed:
        :func:`~.state.time_lapses`). A single image of no followed folder: ({}, 1, -1, True)."""
        doc = self.current
        if doc is None:
            return {}, 1, -1, True
        members = self._sequence_members(doc, doc.plane)
        n_pages = doc.image.n_pages if doc.image is not None else 1
        slices = self._slice_members(doc)
        if slices:  # one slice of a hyperstack, followed over its time points
            tables = {t: r.table for t, (_, _, r) in slices.items() if r.table is not None}
            return tables, max(slices) + 1, doc.result.sequence[1], True
        if n_pages <= 1 and len({id(d) for d, _, _ in members.values()}) > 1:
            tables = {t: r.table for t, (_, _, r) in members.items() if r.table is not None}
            return tables, max(members) + 1, doc.result.sequence[1], False
        if n_pages <= 1:
            return {}, 1, -1, True
        tables = {
            page: r.table
            for (page, channel), r in doc.results.items()
            if channel == doc.channel and r.table is not None
        }
        return tables, n_pages, doc.page, True

    def show_time_point(self, time: int) -> None:
        """Show this time point of the image shown's time-lapse (:meth:`time_lapse`): a page
        of its file, or the image of its folder at that place; the cells selected stay
        selected by their tracks."""
        doc = self.current
        if doc is None:
            return
        slices = self._slice_members(doc)
        if slices:  # a hyperstack's slice: its page at that time point
            if time in slices:
                self.set_plane(slices[time][1][0], doc.channel)
            return
        if doc.image is not None and doc.image.n_pages > 1:
            self.set_plane(time, doc.channel)
            return
        target = self._sequence_members(doc, doc.plane).get(time)
        if target is not None:
            self.set_current(self.documents.index(target[0]))

    def _select_tracks(self, tracks: set, doc: Document, plane: tuple) -> None:
        """Select the cells of these tracks in ``doc`` shown at ``plane``, with its cells
        ready (none: nothing changes); a track not there is followed through its divisions:
        its daughters' cells after it, its mother's before; one missed at this time point (and
        its relatives too) stays selected, with none of its cells, for the time points after."""
        result = doc.result
        if tracks and doc is self.current and doc.plane == plane and result is not None:
            column = track_column(result).tolist()
            found = set(column)
            missing, wanted, held = set(tracks) - found, set(tracks), set()
            if missing:
                lineage = self._lineage()
                wanted |= self.engine.relatives(missing, lineage)
                held = {t for t in missing if not self.engine.relatives({t}, lineage) & found}
            self.select_cells(k for k, t in enumerate(column, start=1) if t in wanted)
            if held:
                self._held_tracks = held
                self.selection_changed.emit(self.selected_cell)

    def _lineage(self) -> dict:
        """{track: the track it divided from} in the time-lapse shown."""
        tables, *_ = self.time_lapse()
        return self.engine.lineage([tables[t] for t in sorted(tables)])

    def selected_lineage(self) -> set:
        """The tracks of the cells selected, their mothers' and their daughters' (*Over
        time* draws them all: a cell before and after it divides)."""
        tracks = self.selected_tracks
        return self.engine.relatives(tracks, self._lineage()) if tracks else set()

    def _followed_with(self, doc: Document, plane: tuple) -> tuple:
        """The time-lapse the result at ``doc``'s ``plane`` is a followed time point of:
        (its time points, their results, its own place among them, the links read from the
        tables); None where it is none (or another result claims its time point)."""
        result = doc.results.get(plane)
        if result is None or result.sequence is None:
            return None
        members = sorted(self._sequence_members(doc, plane).items())
        times = [time for time, _ in members]
        results = [r for _, (_, _, r) in members]
        i = next((k for k, r in enumerate(results) if r is result), None)
        if i is None:  # another result claims its time point: which is which is not known
            return None
        links = followed_links(self.engine, [r.table for r in results], times)
        return times, results, i, links

    def track_settings(self, result: Result | None = None):
        """How the cells of ``result`` (default: the one shown) were followed: the engine's
        ``TrackSettings`` the batch used (a result not followed: the defaults)."""
        if result is None and self.current is not None:
            result = self.current.result
        return self.engine.TrackSettings.of(getattr(result, "tracking", None))

    def _follow_again(self, doc: Document, plane: tuple, was: Result | None = None) -> None:
        """The cells of one time point of a time-lapse whose cells were followed changed (a
        correction, Undo, Redo, a link mended by hand undone or redone, or segmented again):
        link them again to the time point before and the one after (read back where parked),
        take every other time point's links from its table, and number the tracks anew, so
        that its table, the fills, the tracks overlay and an export follow the cells as they
        now are. About two links' time (0.04 s each for 220 cells).

        ``was``: the result it replaced. A table's links hold where the time point before is
        the very result they were made against (``Result.linked_to``: a result come back by
        Undo beside the same time point before, outlines unchanged by a mended link); where
        that one was replaced since (by ``was``, or at another time, by a correction there
        and its Undo), the cells found again at the same centres keep the links they had,
        mended by hand or not (``engine.carry_links``), and only the others (cells added,
        or whose cell before was taken out) are linked anew; a new result (corrected or
        segmented again) keeps those of ``was`` for its cells at the same centres. A result
        come back beside the very time point after it left takes back the links into that
        one as they were (``Result.beside``), whatever cells the correction took out or
        added."""
        followed = self._followed_with(doc, plane)
        if followed is None:
            return
        times, results, i, links = followed
        engine = self.engine
        # what every table's links were made against, where not yet said: the time point
        # before as it is, and for the one after the changed one, the result it replaced
        for k in range(1, len(results)):
            if results[k].linked_to is None and k != i:
                against = was if k == i + 1 and was is not None else results[k - 1]
                results[k].linked_to = weakref.ref(against)
        if was is not None:  # kept for going back to it (Undo, Redo): its links as they are
            if was.linked_to is None and i > 0:
                was.linked_to = weakref.ref(results[i - 1])
            was.beside = _beside(was, results, i, engine)
        restored = _restored(results[i], results, i, links)
        linked = []
        for k in range(max(i, 1), min(i + 2, len(results))):
            against = results[k].linked_to() if results[k].linked_to is not None else None
            if k in restored or against is results[k - 1]:
                continue  # its table's links hold
            linked.append(k)
            links[k] = engine.unlinked(len(results[k].table))
            if times[k - 1] != times[k] - 1:  # a gap: no time point just before it
                continue
            before, after = _labels_of(results[k - 1], engine), _labels_of(results[k], engine)
            if before is not None and after is not None and before.shape == after.shape:
                links[k] = engine.link_frames(before, after, self.track_settings(results[i]))
            if against is not None:  # its own links, carried onto the cells before it now
                links[k] = self._carried(links[k], results, k, False, against)
            elif k == i and was is not None:  # a new result: the links of the one it replaced
                links[k] = self._carried(links[k], results, k, True, was)
        # its divisions settled by the time point after, as a batch settles them; the
        # others' links are their tables' (mended by hand, maybe)
        others = [k for k in range(len(links)) if k not in linked]
        links = engine.settle_divisions(links, leave=others)
        self._number_again(times, results, links, results[i])

    def _carried(self, fresh, results: list, k: int, corrected: bool, was: Result):
        """The links into time point ``k`` of ``results`` linked anew (``fresh``), holding
        those of the cells a correction left alone: ``was`` is the result it replaced at time
        point ``k`` (``corrected``) or at the one before."""
        engine = self.engine
        n_before, n_after = len(results[k - 1].table), len(results[k].table)
        tables = [results[k - 1].table, was.table] if corrected else [was.table, results[k].table]
        kept = engine.links_from_tables(tables)[1]
        same = engine.same_centres(was.centres, results[k if corrected else k - 1].centres)
        before = np.arange(1, n_before + 1) if corrected else same
        after = same if corrected else np.arange(1, n_after + 1)
        return engine.carry_links(kept, fresh, before, after)

    def _number_again(self, times: list, results: list, links: list, changed: Result) -> None:
        """Number the tracks of a time-lapse's results anew from their links, into their
        tables; those of the other time points whose tracks change are marked for *Export
        all* (``tracks_changed``)."""
        tables = [r.table for r in results]
        followed = self.engine.LINK_COLUMNS
        was = [[t.columns.get(name) for name in followed] for t in tables]
        tracks = self.engine.follow_tables(
            links,
            tables,
            times,
            self.track_settings(changed),
            breaks=field_breaks(self.engine, results),
        )
        self.engine.measure_tracks(tracks, tables, times)
        for k, r in enumerate(results):  # what its links are into (_follow_again)
            r.linked_to = weakref.ref(results[k - 1]) if k else None
        for r, old in zip(results, was, strict=True):
            r.layers = {}  # drawn again: each cell in its track's colour
            now = [r.table.columns.get(name) for name in followed]
            same = all(
                a is not None and np.array_equal(a, b) for a, b in zip(old, now, strict=True)
            )
            if r is not changed and r.outputs and not same:
                r.tracks_changed = True  # its files' tracks are out of date

    def time_point_before(self) -> tuple | None:
        """(document, plane) of the time point just before the image shown, whose cells
        those shown were followed from, so that a link can be mended by hand
        (:meth:`link_cell`); None where there is none."""
        doc = self.current
        result = doc.result if doc is not None else None
        if result is None or result.sequence is None or not len(track_column(result)):
            return None
        members = self._sequence_members(doc, doc.plane)
        time = result.sequence[1]
        if members.get(time, (None, None, None))[2] is not result or time - 1 not in members:
            return None
        before_doc, before_plane, before = members[time - 1]
        if field_breaks(self.engine, [before, result]):  # another field: tracks start anew
            return None
        return before_doc, before_plane

    def links_mendable(self) -> bool:
        """Whether the cells of the image shown were followed from a time point just before
        it, so that a link can be mended by hand (:meth:`link_cell`)."""
        return self.time_point_before() is not None

    def link_cell(
        self, cell: int, came_from: int, doc: Document | None = None, plane: tuple | None = None
    ) -> bool:
        """Mend a link by hand: cell ``cell`` of the time point shown (or of ``doc`` at
        ``plane``) was cell ``came_from`` of the time point before (its *Cell Before*; 0:
        none, a cell that came in). Two cells from one cell are its daughters; one left where
        two were goes on with its mother's track. The tracks are numbered anew everywhere, as
        after a correction; it counts as one (Undo takes it back, *Export* and *Export all*
        write it). A later correction of other cells, at this time point or the one before,
        leaves it as mended (:meth:`_follow_again`)."""
        doc = self.current if doc is None else doc
        plane = doc.plane if doc is not None and plane is None else plane
        result = doc.results.get(plane) if doc is not None else None
        if self.busy:
            self._report("Already working; wait or press Cancel first.")
            return False
        followed = self._followed_with(doc, plane) if result is not None else None
        if followed is None or not len(track_column(result)):
            self._report(
                "The cells of this image were not followed over time: process its time-lapse "
                "with Follow cells over time first."
            )
            return False
        times, results, i, links = followed
        # (one that came in may be said so after a time point missed: no gap closed to it)
        if i == 0 or (times[i - 1] != times[i] - 1 and came_from):
            self._report(f"{doc.name}: no time point just before it whose cells it came from.")
            return False
        if field_breaks(self.engine, results[i - 1 : i + 1]):  # as a batch follows them
            self._report(
                f"{doc.name}: the time point before is a field of another size, so its tracks "
                "start anew here; no cell of it came from one of that field."
            )
            return False
        try:
            mended = self.engine.relink(links[i], cell, came_from, len(results[i - 1].table))
        except ValueError as exc:
            self._report(f"{doc.name}: {exc}")
            return False
        was = int(links[i].source[cell - 1])
        gap = result.table.columns.get(self.engine.TRACK_COLUMNS[4])
        closed = gap is not None and len(gap) == len(links[i].source) and gap[cell - 1] > 1
        if was == came_from and not (closed and came_from == 0):
            return True  # as it was (a cell a gap was closed to, said to have come in: not)
        if closed:  # its table's Cell Before is of a time point further back
            parent = int(result.table.columns[self.engine.TRACK_COLUMNS[1]][cell - 1])
            earlier = f"cell {parent} of {int(gap[cell - 1])} time points before (a gap closed)"
        else:
            earlier = f"cell {was}" if was else "none"
        if result.linked_to is None:  # as Undo will find it: its links into the one before
            result.linked_to = weakref.ref(results[i - 1])
        table = copy.copy(result.table)
        table.columns = dict(result.table.columns)  # the one before stays Undo's
        new = replace(
            result,
            table=table,
            layers={},
            edits=result.edits + 1,
            previous=result,
            undone=None,
            outputs={},
            tracks_changed=False,
            link_edit=True,
            beside=None,
        )
        result.keep_aside(new)
        result.undone = None
        trim_undo(new, UNDO_DEPTH)
        doc.results[plane] = results[i] = new
        links[i] = mended
        self._number_again(times, results, links, new)
        index = self.documents.index(doc)
        self.document_changed.emit(index)
        self.result_ready.emit(index)
        said = f"cell {came_from} of the time point before" if came_from else "no cell (new)"
        self.log.emit(
            "info",
            f"{doc.name}: cell {cell} now comes from {said}; it came from {earlier} "
            "(Ctrl+Z undoes)",
        )
        if doc is self.current and doc.plane == plane:
            self.select_cell(cell)
        return True

    def _slice_members(self, doc: Document) -> dict:
        """Where the result shown is one slice of a hyperstack followed over its time points
        (a batch's --track of every page: its pages are not its time points), that
        time-lapse's members (:meth:`_sequence_members`); else empty."""
        members = self._sequence_members(doc, doc.plane)
        if any(d is not doc for d, _, _ in members.values()):
            return {}
        if all(plane[0] == t for t, (_, plane, _) in members.items()):
            return {}  # pages as time points: the file's own
        return members

    def _sequence_members(self, doc: Document, plane: tuple) -> dict:
        """{time point: (document, plane, result)} of the time-lapse whose cells were
        followed that the result at ``doc``'s ``plane`` belongs to (:func:`~.state.time_lapses`;
        empty for none)."""
        result = doc.results.get(plane)
        if result is None or result.sequence is None:
            return {}
        planes = [(d, p, r) for d in self.documents for p, r in d.results.items()]
        return time_lapses(planes).get(sequence_key(doc, plane, result), {})

    def unexported_tracks(self, docs: Iterable[Document] | None = None) -> int:
        """How many of these images (default all) have tracks that a correction of another
        time point changed since their files were written (``Result.tracks_changed``)."""
        docs = self.documents if docs is None else docs
        return sum(any(r.tracks_changed for r in d.results.values()) for d in docs)
