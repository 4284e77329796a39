"""Dataset loaders: IDX and cal_housing.data files written here, then the shared copies when present."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import hpwidgets as hw
from hpwidgets.datasets import california_from_raw, read_idx, write_idx

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared_mnist = pytest.mark.skipif(not (SHARED / "MNIST" / "raw").is_dir(), reason="no ../shared/data/MNIST")
needs_shared_housing = pytest.mark.skipif(not (SHARED / "california_housing").is_dir(),
                                          reason="no ../shared/data/california_housing")


def write_mnist(raw: Path, n: int, suffix: str = "", train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
    prefix = "train" if train else "t10k"
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


def test_read_idx_reads_what_the_header_says(tmp_path):
    values = np.arange(12, dtype=">i4").reshape(3, 4)
    path = tmp_path / "x-idx2-int"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + np.array([3, 4], ">u4").tobytes() + values.tobytes())
    assert np.array_equal(read_idx(path), values) and read_idx(path).dtype == np.int32


def test_read_idx_refuses_other_and_truncated_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="is not an IDX file"):
        read_idx(tmp_path / "bad")
    full = write_idx(tmp_path / "full", np.zeros((4, 5), np.uint8)).read_bytes()
    (tmp_path / "short").write_bytes(full[:-3])
    with pytest.raises(ValueError, match=r"has 29 bytes but its header \(4, 5\) of uint8 needs 32"):
        read_idx(tmp_path / "short")
    (tmp_path / "header").write_bytes(full[:6])
    with pytest.raises(ValueError, match=r"header has 6 bytes, which ends inside its header of 2 dimensions"):
        read_idx(tmp_path / "header")


def test_read_idx_names_a_gzip_file_cut_short_or_not_gzip(tmp_path):
    whole = write_idx(tmp_path / "x-idx2.gz", np.zeros((40, 50), np.uint8)).read_bytes()
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])  # a download that stopped halfway
    (tmp_path / "plain.gz").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 7]))
    for name in ("cut.gz", "plain.gz"):
        with pytest.raises(ValueError, match=rf"^{tmp_path / name} is not a whole gzip file \(.+\); download it"):
            read_idx(tmp_path / name)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_reads_a_torchvision_raw_folder_plain_or_gzipped(tmp_path, suffix):
    images, labels = write_mnist(tmp_path / "MNIST" / "raw", 30, suffix)
    test_images, _ = write_mnist(tmp_path / "MNIST" / "raw", 7, suffix, train=False)
    train = hw.datasets.mnist(tmp_path, download=False)
    assert np.array_equal(train.data, images) and np.array_equal(train.targets, labels)
    assert train.targets.dtype == np.int64 and train.normalization == ((0.1307,), (0.3081,))
    assert np.array_equal(hw.datasets.mnist(tmp_path, train=False, download=False).data, test_images)
    X, y = train
    assert len(train) == 30 and X is train.data and y is train.targets


def test_mnist_accepts_the_raw_folder_itself_and_prefers_the_plain_file(tmp_path):
    raw = tmp_path / "raw"
    images, _ = write_mnist(raw, 5)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(b"broken")  # would fail if read
    assert np.array_equal(hw.datasets.mnist(raw, download=False).data, images)


def test_mnist_missing_offline_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no MNIST train-images-idx3-ubyte\[.gz\].*download=True to fetch"):
        hw.datasets.mnist(tmp_path / "typo")  # offline by default, as torchvision's own loader is
    assert list(tmp_path.iterdir()) == []  # no folder made, nothing fetched


def write_housing(path: Path) -> np.ndarray:
    # longitude, latitude, age, rooms, bedrooms, population, households, income, value
    rows = np.array([[-122.23, 37.88, 41, 880, 129, 322, 126, 8.3252, 452600],
                     [-122.22, 37.86, 21, 7099, 1106, 2401, 1138, 8.3014, 358500],
                     [-118.00, 34.00, 10, 1000, 200, 500, 250, 2.5, 150000]])
    path.write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n")
    return rows


def test_california_housing_builds_scikit_learns_features_from_the_raw_file(tmp_path):
    rows = write_housing(tmp_path / "cal_housing.data")
    X, y = hw.datasets.california_housing(tmp_path)  # a folder holding the file works too
    assert X.shape == (3, 8) and np.allclose(y, rows[:, 8] / 1e5)
    assert np.allclose(X[0], [8.3252, 41, 880 / 126, 129 / 126, 322, 322 / 126, 37.88, -122.23])
    assert hw.datasets.california_housing(tmp_path / "cal_housing.data").feature_names[:2] == ("MedInc", "HouseAge")
    with pytest.raises(ValueError, match="needs 9 columns per row"):
        california_from_raw(np.zeros((2, 8)))
    with pytest.raises(FileNotFoundError, match=r"no cal_housing\.data"):
        hw.datasets.california_housing(tmp_path / "elsewhere")


def test_california_housing_in_another_layout_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "cal_housing.data"
    path.write_text("longitude,latitude,housing_median_age\n-122.23,37.88,41\n")  # a header row
    with pytest.raises(ValueError, match=rf"^{path} is not StatLib's cal_housing\.data \(9 comma-separated "
                                         r"numbers per row, no header\): could not convert"):
        hw.datasets.california_housing(path)
    path.write_text("")
    with pytest.raises(ValueError, match=rf"^{path} is not StatLib's .*needs 9 columns per row"):
        hw.datasets.california_housing(path)


def test_california_housing_takes_the_data_root_that_mnist_takes(tmp_path):
    (tmp_path / "california_housing").mkdir()
    rows = write_housing(tmp_path / "california_housing" / "cal_housing.data")
    assert np.allclose(hw.datasets.california_housing(tmp_path).targets, rows[:, 8] / 1e5)  # $HPW_DATA's layout


def test_california_housing_without_a_path_reads_scikit_learns_cache_and_fetches_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))  # an empty cache
    with pytest.raises(FileNotFoundError, match=r"not in scikit-learn's cache .*download=True to fetch it"):
        hw.datasets.california_housing()
    assert not any(tmp_path.rglob("*.data")) and not any(tmp_path.rglob("*.tgz"))


def test_digits_are_scikit_learns_bundled_images():
    X, y = hw.datasets.digits()
    assert X.shape == (1797, 64) and set(np.unique(y)) == set(range(10)) and X.max() == 16


@needs_shared_mnist
def test_the_shared_mnist_matches_its_readme():
    train, test = hw.datasets.mnist(SHARED, download=False), hw.datasets.mnist(SHARED, train=False, download=False)
    assert train.data.shape == (60000, 28, 28) and test.data.shape == (10000, 28, 28)
    assert np.bincount(train.targets).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test.targets).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert round(float(train.data.mean()), 4) == 33.3184


@needs_shared_mnist
def test_the_shared_gzip_files_decode_to_the_plain_ones():
    raw = SHARED / "MNIST" / "raw"
    assert np.array_equal(read_idx(raw / "t10k-images-idx3-ubyte.gz"), read_idx(raw / "t10k-images-idx3-ubyte"))


@needs_shared_housing
def test_the_shared_california_housing_matches_scikit_learns_statistics():
    data = hw.datasets.california_housing(SHARED / "california_housing")
    X, y = data
    assert X.shape == (20640, 8) and len(data.feature_names) == 8
    assert round(float(y.mean()), 6) == 2.068558 and round(float(y.min()), 5) == 0.14999
    means = dict(zip(data.feature_names, X.mean(axis=0), strict=True))
    assert round(means["MedInc"], 6) == 3.870671 and round(means["AveRooms"], 6) == 5.429000
    assert round(means["AveOccup"], 6) == 3.070655 and round(means["Longitude"], 6) == -119.569704
