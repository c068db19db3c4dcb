"""cellprop.engine: segmentation from a trained model, with numpy and onnxruntime only.

The public API is listed here, in one place (docs/ARCHITECTURE.md describes it); the modules
behind it each hold one stage:

    io          read_image, find_images              images in (TIFF, PNG, JPEG, BMP)
                count_pages                          pages of a multi-page file (header only)
                read_points, points_outside          cell centres in (CSV: image,x,y or x,y)
                points_not_kept, points_kept         points that gave no cell
                pixels_digest                        a plane's pixels' fingerprint
    normalise   percentiles, rescale                 shared with training
    model       list_models, load_model              model folders, onnxruntime sessions
                broken_models                        model folders that cannot be used, and why
                model_info                           model.json alone (its channel, defaults)
    choose      suggest_model, background_level      which model suits an image (--model auto)
    size        estimate_diameter                    how large its cells are (--diameter auto)
    detect      centres and centre regions S_u
    propagate   U-Net (tiled) and guided propagation per cell (crop | full)
    projection  maximum projection
    graphcut    per-cell PyMaxflow cut and fusion
    pipeline    Settings, segment                    all stages on one image
                keep_unreached                       a correction: cells it does not reach
                                                     keep their outlines as they are
    memo        Memo                                 what segment() keeps for a correction
    features    measure                              per-cell table, CellProfiler names
                measure_image                        ... of a plane as read: every channel
                EXPANDED, neighbours_in_words        neighbours of cells grown until they
                                                     meet; how neighbours are found, in words
    output      write_labels, write_overlay, write_table, write_roi_zip
                write_tables                         many images' cells in one CSV
                write_image_table                    ... and each image's count and means
                write_rows                           tracks.csv
                as_written                           a table's numbers as its CSV holds them
                write_points, write_training_set     clicked centres -> training dataset
                read_training_sources                ... and where its images came from
    planes      Plane, ImageResult                   what a batch is over, what became of each
                batch_planes, plane_name             every page as an image (page="all")
                continued_planes                     a run continued keeps all it finished
                named_as_run                         an export named as the run there named it
                name_clash, clash_message            images that would write the same files
                planes_points                        each image's centres in a points file
    batch       process_image, process_batch         files in, result files out
                output_paths, RUN_FILES,             the result files' names; whether a
                OUTPUT_SUFFIXES, written_result      label image there is cellprop's
                measure_again                        a plane's cells measured anew, their
                                                     tracks and links kept
    track       track_frames, measure_tracks         cells followed from time point to time
                                                     point (process_batch(track=True))
                link_frames, links_from_tables,      one time point linked again (a
                number_tracks, track_rows            correction), the rest as they were
                follow_tables, close_gaps            tracks numbered, gaps closed (a cell
                LINK_COLUMNS                         missed at a time point), from tables
                lineage, relatives                   who divided from whom, by the tables
                relink                               a link mended by hand
                same_centres, carry_links            a correction's cells left alone keep
                                                     their links (mended ones too)
                settle_divisions                     a daughter no cell follows: a piece
                table_tracks                         each cell's track, from its table
                tracks_summary                       a run's tracks.csv in a line
    parallel    auto_workers                         images at once (--workers auto), in
                                                     worker processes
    journal     earlier_run, run_record              a run's record, to continue it (--resume)
                recount                              its summary's counts, after an export
                record_export                        the window's exports kept as a run's
                saved_results (batch)                a run's results read back, to look again
    evaluate    F1 at 10 px, mDice, AP50; how much they rest on the images (Scores.interval)

Never imports Qt or torch (import-linter contracts in pyproject.toml).
"""

from .batch import (
    RUN_FILES,
    BatchResult,
    followed_again,
    measure_again,
    output_paths,
    process_batch,
    process_image,
    replaced_left_over,
    run_tables,
    saved_results,
    started_anew,
    time_points_left_out,
)
from .choose import DARK_BACKGROUND, Suggestion, background_level, light_fits, suggest_model
from .errors import Cancelled, ImageError, ModelError, OutputExists, PointsError, ResumeError
from .evaluate import evaluate_folder
from .features import (
    EXPANDED,
    CellTable,
    calibration,
    feature_transform,
    measure,
    measure_image,
    neighbours_in_words,
)
from .io import (
    COLOUR_CHANNELS,
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageData,
    count_pages,
    find_images,
    pixels_digest,
    plane_size,
    points_kept,
    points_not_kept,
    points_outside,
    read_image,
    read_points,
    written_result,
)
from .journal import earlier_run, record_export, recount, run_record
from .memo import Memo
from .model import (
    Model,
    ModelInfo,
    available_devices,
    broken_models,
    list_models,
    load_model,
    load_models,
    model_info,
)
from .output import (
    OUTPUT_SUFFIXES,
    as_written,
    read_labels,
    read_table,
    read_training_sources,
    write_image_table,
    write_labels,
    write_overlay,
    write_points,
    write_roi_zip,
    write_rows,
    write_table,
    write_tables,
    write_training_set,
)
from .parallel import auto_workers
from .pipeline import Segmentation, Settings, keep_unreached, segment
from .planes import (
    ImageResult,
    Plane,
    batch_planes,
    clash_message,
    continued_planes,
    name_clash,
    named_as_run,
    plane_name,
    planes_points,
)
from .size import DiameterEstimate, estimate_diameter
from .track import (
    LINK_COLUMNS,
    TRACK_COLUMNS,
    TRACKS_CSV_COLUMNS,
    TrackSettings,
    carry_links,
    close_gaps,
    follow_tables,
    lineage,
    link_frames,
    links_from_tables,
    measure_tracks,
    number_tracks,
    relatives,
    relink,
    same_centres,
    settle_divisions,
    table_tracks,
    track_frames,
    track_rows,
    tracks_summary,
    unlinked,
)

__all__ = [
    "COLOUR_CHANNELS",
    "DARK_BACKGROUND",
    "LINK_COLUMNS",
    "TRACK_COLUMNS",
    "TRACKS_CSV_COLUMNS",
    "TrackSettings",
    "carry_links",
    "close_gaps",
    "follow_tables",
    "followed_again",
    "started_anew",
    "replaced_left_over",
    "time_points_left_out",
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
    "tracks_summary",
    "track_frames",
    "track_rows",
    "unlinked",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "BatchResult",
    "Cancelled",
    "CellTable",
    "EXPANDED",
    "neighbours_in_words",
    "DiameterEstimate",
    "ImageData",
    "ImageError",
    "ImageResult",
    "Model",
    "ModelError",
    "ModelInfo",
    "OutputExists",
    "Plane",
    "PointsError",
    "ResumeError",
    "Memo",
    "Segmentation",
    "Settings",
    "Suggestion",
    "auto_workers",
    "available_devices",
    "batch_planes",
    "calibration",
    "clash_message",
    "continued_planes",
    "named_as_run",
    "count_pages",
    "plane_size",
    "background_level",
    "earlier_run",
    "estimate_diameter",
    "evaluate_folder",
    "feature_transform",
    "find_images",
    "light_fits",
    "broken_models",
    "list_models",
    "load_model",
    "load_models",
    "measure",
    "measure_again",
    "measure_image",
    "model_info",
    "name_clash",
    "output_paths",
    "pixels_digest",
    "plane_name",
    "planes_points",
    "process_batch",
    "points_kept",
    "points_not_kept",
    "points_outside",
    "process_image",
    "read_image",
    "read_labels",
    "read_points",
    "read_table",
    "as_written",
    "recount",
    "record_export",
    "run_record",
    "RUN_FILES",
    "OUTPUT_SUFFIXES",
    "written_result",
    "run_tables",
    "saved_results",
    "keep_unreached",
    "segment",
    "suggest_model",
    "write_labels",
    "write_overlay",
    "write_points",
    "write_roi_zip",
    "write_rows",
    "write_table",
    "write_image_table",
    "write_tables",
    "write_training_set",
    "read_training_sources",
]
