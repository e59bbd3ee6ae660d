"""NPZ weights against numpy itself: files written by np.savez and
np.savez_compressed load bit for bit, files written by libcvis are read by
np.load bit for bit, and every refusal leaves the model as it was."""
import io
import os
import zipfile

import numpy as np
import pytest

import cvis


def build_model():
    m = cvis.Model(8, 8, 3)
    m.conv2d(4, 3, activation="relu")
    m.batch_norm(name="block/bn")
    m.conv2d(6, 3, groups=2, use_bias=False, name="grouped")
    m.flatten()
    m.dense(5)
    return m


def current(m):
    """{key: array} of the model's weights, read through the Python API."""
    out = {}
    for layer in m.layers:
        ref = m.layer(layer.index)
        for name, w in zip(ref.weight_names(), ref.weights()):
            out[layer.name + "/" + name] = w
    return out


def random_weights(m, seed, dtype=np.float32):
    """Values that exercise the bits: signed zeros, float32 subnormals, extremes."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, w in current(m).items():
        v = rng.standard_normal(w.shape).astype(np.float64) * 10.0 ** rng.integers(-3, 3)
        flat = v.reshape(-1)
        if dtype == np.float16:  # signed zero, subnormals, the largest, the smallest normal
            specials = [-0.0, 2.0 ** -24, -(2.0 ** -20), 65504.0, 2.0 ** -14]
        else:
            specials = [-0.0, 1e-45, -3e-39, 3.4028234663852886e38, 1.17549435e-38]
        flat[:len(specials)] = specials[:flat.size]
        out[key] = v.astype(dtype)
    return out


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_weights(m, expected):
    got = current(m)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        want = np.asarray(value).astype(np.float32)  # numpy's own rounding for float64/16
        assert got[key].shape == want.shape, key
        assert np.array_equal(bits(got[key]), bits(want)), key


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_numpy_archives_load_bitwise(tmp_path, save):
    m = build_model()
    w = random_weights(m, 1)
    save(tmp_path / "w.npz", **w)
    m.load_weights(tmp_path / "w.npz")
    assert_weights(m, w)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_other_float_types_convert(tmp_path, dtype):
    m = build_model()
    w = random_weights(m, 2, dtype=dtype)
    np.savez_compressed(tmp_path / "w.npz", **w)
    m.load_weights(tmp_path / "w.npz")
    assert_weights(m, w)  # compared with numpy's astype(float32)


def test_fortran_order_and_big_endian(tmp_path):
    m = build_model()
    w = random_weights(m, 3)
    w["conv2d/kernel"] = np.asfortranarray(w["conv2d/kernel"])
    w["dense/kernel"] = np.asfortranarray(w["dense/kernel"]).astype(">f8")
    w["conv2d/bias"] = w["conv2d/bias"].astype(">f4")
    assert w["conv2d/kernel"].flags.f_contiguous and not w["conv2d/kernel"].flags.c_contiguous
    np.savez(tmp_path / "w.npz", **w)
    m.load_weights(tmp_path / "w.npz")
    assert_weights(m, w)


def test_keras_variable_names(tmp_path):
    m = build_model()
    w = random_weights(m, 4)
    np.savez(tmp_path / "w.npz", **{k + ":0": v for k, v in w.items()})
    m.load_weights(tmp_path / "w.npz")
    assert_weights(m, w)


def test_npy_versions_and_member_names(tmp_path):
    """Members written as .npy 1.0, 2.0 and 3.0, with or without the .npy
    suffix, in an archive with a comment."""
    m = build_model()
    w = random_weights(m, 5)
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i, (key, value) in enumerate(w.items()):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, value, version=[(1, 0), (2, 0), (3, 0)][i % 3])
            zf.writestr(key if i % 2 else key + ".npy", buf.getvalue())
        zf.comment = b"written by a test"
    m.load_weights(path)
    assert_weights(m, w)


class _Unseekable(io.RawIOBase):
    """A stream that cannot seek: zipfile then writes data descriptors."""

    def __init__(self):
        self.chunks = []

    def writable(self):
        return True

    def write(self, b):
        self.chunks.append(bytes(b))
        return len(b)


def test_archive_with_data_descriptors(tmp_path):
    m = build_model()
    w = random_weights(m, 6)
    stream = _Unseekable()
    np.savez_compressed(stream, **w)
    data = b"".join(stream.chunks)
    flags = int.from_bytes(data[6:8], "little")
    assert flags & 0x08  # the sizes follow the data
    (tmp_path / "w.npz").write_bytes(data)
    m.load_weights(tmp_path / "w.npz")
    assert_weights(m, w)


def test_saved_file_is_read_by_numpy(tmp_path):
    m = build_model()
    m.init_weights(7)
    expected = current(m)
    m.save_weights(tmp_path / "out.npz")
    with zipfile.ZipFile(tmp_path / "out.npz") as zf:
        assert zf.testzip() is None
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
        assert sorted(zf.namelist()) == sorted(k + ".npy" for k in expected)
    with np.load(tmp_path / "out.npz") as z:
        assert sorted(z.files) == sorted(expected)
        for key, value in expected.items():
            a = z[key]
            assert a.dtype == np.dtype("<f4") and a.flags.c_contiguous
            assert a.shape == value.shape
            assert np.array_equal(bits(a), bits(value)), key
    # And back: libcvis reads what it wrote.
    m2 = build_model()
    m2.load_weights(tmp_path / "out.npz")
    assert_weights(m2, expected)


def test_non_ascii_layer_names(tmp_path):
    m = cvis.Model(4, 4, 2)
    m.conv2d(3, 3, name="çonv/ß")
    m.init_weights(3)
    expected = current(m)
    m.save_weights(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as z:
        assert sorted(z.files) == ["çonv/ß/bias", "çonv/ß/kernel"]
    w = random_weights(m, 8)
    np.savez(tmp_path / "np.npz", **w)
    m.load_weights(tmp_path / "np.npz")
    assert_weights(m, w)
    assert not np.array_equal(current(m)["çonv/ß/kernel"], expected["çonv/ß/kernel"])


# ------------------------------------------------------------------ refusals

def refused(m, tmp_path, weights, error, match):
    """Saves `weights`, loads them, expects `error` naming `match`, and
    checks that the model did not change."""
    before = current(m)
    np.savez(tmp_path / "bad.npz", **weights)
    with pytest.raises(error, match=match):
        m.load_weights(tmp_path / "bad.npz")
    assert_weights(m, before)


def test_missing_key(tmp_path):
    m = build_model()
    w = random_weights(m, 9)
    del w["block/bn/moving_variance"]
    refused(m, tmp_path, w, cvis.NotFoundError, "block/bn/moving_variance")
    with pytest.raises(KeyError):  # cvis.NotFoundError is a KeyError too
        m.load_weights(tmp_path / "bad.npz")


def test_extra_key(tmp_path):
    m = build_model()
    w = random_weights(m, 10)
    w["dense_7/kernel"] = w["dense/kernel"]
    refused(m, tmp_path, w, cvis.InvalidArgumentError, "dense_7/kernel")
    w = random_weights(m, 10)
    w["grouped/bias"] = np.zeros(6, np.float32)  # the layer has no bias
    refused(m, tmp_path, w, cvis.InvalidArgumentError, "grouped/bias")


def test_wrong_shape(tmp_path):
    m = build_model()
    w = random_weights(m, 11)
    w["dense/kernel"] = w["dense/kernel"].T.copy()
    refused(m, tmp_path, w, cvis.ShapeError, "dense/kernel")


def test_non_finite(tmp_path):
    m = build_model()
    for bad in (np.nan, np.inf):
        w = random_weights(m, 12)
        w["conv2d/bias"][2] = bad
        refused(m, tmp_path, w, cvis.NonFiniteError, "conv2d/bias")
    w = random_weights(m, 12, dtype=np.float64)
    w["conv2d/bias"][0] = 1e300  # finite, but not as float32
    refused(m, tmp_path, w, cvis.NonFiniteError, "conv2d/bias")


def test_unsupported_dtype(tmp_path):
    m = build_model()
    w = random_weights(m, 13)
    w["conv2d/bias"] = np.arange(4, dtype=np.int64)
    refused(m, tmp_path, w, cvis.UnsupportedError, "<i8")
    w["conv2d/bias"] = np.arange(4, dtype=np.uint8)
    refused(m, tmp_path, w, cvis.UnsupportedError, r"\|u1")


def test_missing_and_corrupt_files(tmp_path):
    m = build_model()
    m.init_weights(14)
    before = current(m)
    with pytest.raises(cvis.IOError, match="nope.npz"):
        m.load_weights(tmp_path / "nope.npz")
    np.savez_compressed(tmp_path / "w.npz", **random_weights(m, 15))
    data = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(cvis.FormatError):
        m.load_weights(tmp_path / "cut.npz")
    # A flipped bit inside the last member's compressed data: caught by
    # inflate or by the CRC, after the earlier members have been read.
    with zipfile.ZipFile(tmp_path / "w.npz") as zf:
        last = zf.infolist()[-1]
    start = last.header_offset + 30 + len(last.filename.encode()) + 20
    flipped = bytearray(data)
    flipped[start + last.compress_size // 2] ^= 0x10
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(cvis.FormatError, match=last.filename):
        m.load_weights(tmp_path / "flip.npz")
    assert_weights(m, before)


def test_failed_save_keeps_the_old_file(tmp_path):
    m = build_model()
    m.init_weights(16)
    m.save_weights(tmp_path / "w.npz")
    old = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(cvis.IOError):
        m.save_weights(tmp_path / "dir.npz")  # cannot replace a directory
    with pytest.raises(cvis.IOError):
        m.save_weights(tmp_path / "missing" / "w.npz")
    assert sorted(os.listdir(tmp_path)) == ["dir.npz", "w.npz"]  # no temporary left
    assert (tmp_path / "w.npz").read_bytes() == old
