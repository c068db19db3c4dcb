"""Training a model from the window: ``cellprop-train`` in a child process.

The app never imports torch (it must run without it); when the training extra is installed in
the same Python, the window runs the training command there and follows its output. Nothing
here knows about widgets.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from cellprop import TRAIN_INSTALL

__all__ = ["MODALITIES", "TrainingRun", "training_folder", "training_unavailable"]

#: The kinds of microscopy cellprop-train knows (its --modality), as offered in the window.
MODALITIES = ("phase", "dic", "fluorescence", "brightfield")

_EPOCH = re.compile(r"^epoch (\d+)/(\d+): (.*)$")
_BAR = re.compile(r"^training:\s*(\d+)%")
_ERROR = "cellprop-train: "


def training_unavailable() -> str:
    """Why models cannot be trained from this app, or "" when they can."""
    if getattr(sys, "frozen", False):
        return (
            "This installed app does not include training: train a model with cellprop-train "
            "where cellprop is installed in Python with PyTorch (see the README), then choose "
            "its folder here"
        )
    # looked for, not imported (an export needs onnx: cellprop-train refused without it)
    missing = [m for m in ("torch", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        what = "PyTorch" if missing == ["torch"] else " and ".join(missing)
        return (
            f"Training needs {what}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed with this app: install {'it' if len(missing) == 1 else 'them'} into "
            f"this Python ({sys.executable}): {TRAIN_INSTALL}"
        )
    return ""


class TrainingRun(QObject):
    """One run of ``cellprop-train DATASET --out MODEL ...`` in a child process."""

    progress = Signal(str, float)  # what it is doing, fraction done 0..1 (-1: unknown)
    finished = Signal(bool, str)  # True and the model folder, or False and the reason
    # What cellprop-train says the user should know ("note: ..."): images without centres
    # left out, centres clicked twice counted once, a model of that name installed already,
    # a start from a model of another microscopy. The command line prints them; the window's
    # Log showed none.
    note = Signal(str)

    def __init__(self, datasets: list, out: Path, options: list, parent: QObject | None = None):
        super().__init__(parent)
        self.datasets = [Path(d) for d in datasets]
        self.out = Path(out)
        self.arguments = [
            "-m",
            "cellprop.training.cli",
            *map(str, self.datasets),
            "--out",
            str(self.out),
            *map(str, options),
        ]
        self.lines: list[str] = []  # the output, progress bars left out
        self._buffer = ""
        self._stopping = False
        self._epochs = ""
        self._process = QProcess(self)
        self._process.setProgram(sys.executable)
        self._process.setArguments(self.arguments)
        self._process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")  # lines as they are written, not at the end
        self._process.setProcessEnvironment(env)
        self._process.readyReadStandardOutput.connect(self._read)
        self._process.finished.connect(self._ended)
        self._process.errorOccurred.connect(self._failed_to_start)

    @property
    def command(self) -> str:
        """The same training as a command line (for the log, and to go on with --resume)."""
        return shlex.join(["cellprop-train", *self.arguments[2:]])  # pasted: one word a path

    @property
    def stopped(self) -> bool:
        """Ended by :meth:`stop`."""
        return self._stopping

    @property
    def running(self) -> bool:
        return self._process.state() != QProcess.ProcessState.NotRunning

    def start(self) -> None:
        self.progress.emit("Training: starting", -1.0)
        self._process.start()

    def stop(self, wait_ms: int = 5000) -> None:
        """Stop the training; the epochs done so far stay in its checkpoint (--resume)."""
        if not self.running:
            return
        self._stopping = True
        self._process.terminate()
        if not self._process.waitForFinished(wait_ms):
            self._process.kill()
            self._process.waitForFinished(wait_ms)

    def _read(self) -> None:
        data = bytes(self._process.readAllStandardOutput().data())
        self._buffer += data.decode("utf-8", "replace")
        *lines, self._buffer = re.split(r"[\r\n]", self._buffer)
        for line in lines:
            self._line(line.strip())

    def _line(self, line: str) -> None:
        if not line:
            return
        bar = _BAR.match(line)
        if bar:  # tqdm's bar: how far through all the steps
            self.progress.emit(
                f"Training{self._epochs}: {bar.group(1)} %", int(bar.group(1)) / 100.0
            )
            return
        self.lines.append(line)
        del self.lines[:-200]
        if line.startswith("note: "):
            self.note.emit(line[len("note: ") :])
        epoch = _EPOCH.match(line)
        if epoch:
            done, total = int(epoch.group(1)), int(epoch.group(2))
            self._epochs = f" (epoch {done} of {total} done: {epoch.group(3)})"
            self.progress.emit(f"Training{self._epochs}", done / total)

    def _ended(self, code: int, status) -> None:
        self._read()
        if self._buffer.strip():
            self._line(self._buffer.strip())
            self._buffer = ""
        # cellprop-train's own last word, where it says it (an epoch said just before a
        # Stop whose checkpoint was not written yet), else the epochs said
        nothing = any("before the first epoch ended: nothing kept" in x for x in self.lines[-3:])
        kept = self._epochs or any("resuming from" in x for x in self.lines)
        if self._stopping and (nothing or not kept):
            self.finished.emit(False, "training stopped before its first epoch ended: nothing kept")
        elif self._stopping:
            self.finished.emit(
                False,
                "training stopped; the epochs done are kept in its checkpoint: continue with "
                f"{self.command} --resume",
            )
        elif code == 0 and (self.out / "model.json").is_file():
            self.finished.emit(True, str(self.out))
        else:
            errors = [
                line[len(_ERROR) :].removeprefix("error: ")
                for line in self.lines
                if line.startswith(_ERROR)
            ]
            reason = errors[-1] if errors else (self.lines[-1] if self.lines else f"exit {code}")
            self.finished.emit(False, f"training failed: {reason}")

    def _failed_to_start(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.finished.emit(False, f"training could not start ({sys.executable}): {error}")


def training_folder(chosen: Path, dataset: Path) -> Path:
    """Where a model goes when the user chose ``chosen``: that folder when it is empty,
    already a model folder or the folder of a training stopped (its checkpoints), else a new
    folder in it named after the training set (so that a folder of other files never gets a
    model's files strewn into it)."""
    chosen = Path(chosen)
    if not chosen.exists() or (chosen / "model.json").is_file() or not any(chosen.iterdir()):
        return chosen
    if (chosen / "checkpoints" / "checkpoint.pt").is_file():
        return chosen
    return chosen / f"{Path(dataset).name}-model"
