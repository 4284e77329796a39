"""Built-in datasets for examples and teaching, readable offline.

* ``digits()``: scikit-learn's bundled 8x8 digits (always offline).
* ``mnist(root)``: the MNIST IDX files in ``root/MNIST/raw`` (plain or ``.gz``), read here
  without torchvision; ``download=True`` lets torchvision fetch missing files (online only).
* ``california_housing(path)``: StatLib's ``cal_housing.data`` turned into scikit-learn's 8
  features and target; with no path, scikit-learn's cache (``download=True``: its fetcher).

Nothing here touches the network unless ``download=True`` says so (torchvision's own default).

Each returns an ``ArrayDataset``: ``X, y = hw.datasets.digits()`` unpacks it, and
``hw.data.from_torchvision(hw.datasets.mnist(root), device)`` puts it on a device with the
seed's normalisation.
"""

from __future__ import annotations

import gzip
import os
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# IDX type codes (third byte of the magic number) -> big-endian numpy dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MNIST_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CALIFORNIA_FEATURES = ("MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup",
                       "Latitude", "Longitude")


@dataclass(frozen=True, eq=False)  # compared (and cached on devices) by identity
class ArrayDataset:
    """Arrays plus what describes them; iterates as ``(data, targets)`` so ``X, y = ds`` works."""

    data: np.ndarray
    targets: np.ndarray
    name: str
    feature_names: tuple[str, ...] = ()
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    description: str = field(default="", repr=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.data
        yield self.targets

    def __len__(self) -> int:
        return len(self.targets)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file (plain or gzip) as a numpy array, checked against its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:  # a download cut short, or not gzip at all
        raise ValueError(f"{path} is not a whole gzip file ({error}); download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file: its first bytes are {raw[:4]!r}")
    ndim, dtype = raw[3], np.dtype(_IDX_TYPES[raw[2]])
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path} has {len(raw)} bytes, which ends inside its header of {ndim} dimensions")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path} has {len(raw)} bytes but its header {shape} of {dtype} needs {expected}")
    array = np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # native byte order, writable


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip when the name ends in .gz): small MNIST-like fixtures."""
    path, array = Path(path), np.asarray(array)
    codes = {np.dtype(v).newbyteorder(">"): k for k, v in _IDX_TYPES.items()}
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big not in codes:
        raise ValueError(f"IDX stores uint8, int8, int16, int32, float32 or float64, but got {array.dtype}")
    header = bytes([0, 0, codes[big], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as stream:
        stream.write(header + array.astype(big).tobytes())
    return path


def digits() -> ArrayDataset:
    """scikit-learn's 1797 8x8 digit images: X float64 (1797, 64) in 0..16, y int (1797,)."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    return ArrayDataset(bunch.data, bunch.target.astype(np.int64), "digits",
                        tuple(bunch.feature_names), description=bunch.DESCR)


def _raw_folder(root: Path) -> Path:
    """``root`` may be the torchvision root, its MNIST folder or the raw folder itself."""
    for candidate in (root / "MNIST" / "raw", root / "raw", root):
        if any(candidate.glob("*-idx?-ubyte*")):
            return candidate
    return root / "MNIST" / "raw"


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):  # the plain file reads faster
        if (folder / name).is_file():
            return folder / name
    return None


def _download_mnist(root: Path) -> None:
    try:
        from torchvision.datasets import MNIST
    except ImportError as error:
        raise ImportError("MNIST is not in the given folder and downloading it needs torchvision: "
                          "pip install 'hpwidgets[torch]'") from error
    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def mnist(root: str | os.PathLike[str] = "data", train: bool = True, *, download: bool = False) -> ArrayDataset:
    """MNIST's training (60000) or test (10000) images: data uint8 (N, 28, 28), targets int64.

    Reads ``root/MNIST/raw`` as torchvision lays it out (plain or ``.gz`` IDX files), offline.
    Only when the files are missing and ``download`` is true does torchvision fetch them.
    """
    root = Path(root)
    images_stem, labels_stem = _MNIST_FILES[bool(train)]
    folder = _raw_folder(root)
    if _find(folder, images_stem) is None or _find(folder, labels_stem) is None:
        if not download:
            raise FileNotFoundError(f"no MNIST {images_stem}[.gz] and {labels_stem}[.gz] in {folder}; point "
                                    f"root at the folder holding MNIST/raw, or pass download=True to fetch them")
        _download_mnist(root)
        folder = root / "MNIST" / "raw"
    images, labels = read_idx(_find(folder, images_stem)), read_idx(_find(folder, labels_stem))  # type: ignore[arg-type]
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"MNIST files in {folder} disagree: images {images.shape}, labels {labels.shape}")
    from .data import MNIST_NORMALIZATION
    return ArrayDataset(images, labels.astype(np.int64), "mnist-train" if train else "mnist-test",
                        normalization=MNIST_NORMALIZATION)


def _california_file(path: Path) -> Path:
    for candidate in (path, path / "cal_housing.data", path / "CaliforniaHousing" / "cal_housing.data",
                      path / "california_housing" / "cal_housing.data"):  # a data root, as mnist(root) takes
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no cal_housing.data at {path} (nor in it, nor in its CaliforniaHousing or "
                            f"california_housing folder)")


def california_from_raw(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's features and target from the 9 StatLib columns (in the file's order)."""
    if raw.ndim != 2 or raw.shape[1] != 9:
        raise ValueError(f"cal_housing.data needs 9 columns per row, but got shape {raw.shape}")
    longitude, latitude, age, rooms, bedrooms, population, households, income, value = raw.T
    features = np.column_stack([income, age, rooms / households, bedrooms / households, population,
                                population / households, latitude, longitude])
    return features, value / 100000.0


def california_housing(path: str | os.PathLike[str] | None = None, *, download: bool = False) -> ArrayDataset:
    """California housing (20640 block groups): X float64 (N, 8) as scikit-learn names them, y in $100k.

    ``path``: the ``cal_housing.data`` file or a folder holding it. None: scikit-learn's cache, which
    its fetcher fills only with ``download=True``.
    """
    if path is None:
        from sklearn.datasets import fetch_california_housing, get_data_home
        try:
            bunch = fetch_california_housing(download_if_missing=download)
        except OSError:  # not cached, and no download allowed
            raise FileNotFoundError(f"California housing is not in scikit-learn's cache ({get_data_home()}); "
                                    f"pass the path of cal_housing.data, or download=True to fetch it") from None
        return ArrayDataset(bunch.data, bunch.target, "california_housing", tuple(bunch.feature_names),
                            description=bunch.DESCR)
    file = _california_file(Path(path))
    try:
        with warnings.catch_warnings():  # an empty file: refused below, not warned about first
            warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
            X, y = california_from_raw(np.loadtxt(file, delimiter=",", dtype=np.float64, ndmin=2))
    except ValueError as error:  # a header row, another CSV layout (Kaggle's housing.csv), an empty file
        raise ValueError(f"{file} is not StatLib's cal_housing.data (9 comma-separated numbers per row, "
                         f"no header): {error}") from None
    return ArrayDataset(X, y, "california_housing", CALIFORNIA_FEATURES)

