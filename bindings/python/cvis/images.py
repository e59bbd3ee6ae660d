"""Images in and pictures out: loading and resizing images, batches for a
model, colormaps, heatmap overlays, PNG files, grids of pictures with
titles, and a static HTML report.

Images are numpy uint8 arrays (H,W), (H,W,1), (H,W,3) or (H,W,4); batches
for a model are float32 (B,H,W,3).  Sizes are given as (height, width), as
numpy and Keras give them.
"""
import ctypes
import os

import numpy as np

from . import _native
from ._native import api, c_int, c_int64, c_float, c_char_p, c_void_p, P, tensor_p
from ._tensor import Borrowed, adopt

c_uint32 = ctypes.c_uint32

image_p = P(_native._Opaque)
grid_p = P(_native._Opaque)
report_p = P(_native._Opaque)

_native.declare({
    "cvis_image_new": ("status", [c_int, c_int, c_int, P(image_p)]),
    "cvis_image_load": ("status", [c_char_p, P(image_p)]),
    "cvis_image_load_memory": ("status", [c_void_p, c_int64, P(image_p)]),
    "cvis_image_save_png": ("status", [image_p, c_char_p]),
    "cvis_image_width": (c_int, [image_p]),
    "cvis_image_height": (c_int, [image_p]),
    "cvis_image_channels": (c_int, [image_p]),
    "cvis_image_data": (c_void_p, [image_p]),
    "cvis_image_free": (None, [image_p]),
    "cvis_image_resize": ("status", [image_p, c_int, c_int, c_int, P(image_p)]),
    "cvis_images_to_tensor": ("status", [c_int, P(image_p), c_int, c_int, P(tensor_p)]),
    "cvis_images_to_tensor_normalized": ("status", [c_int, P(image_p), c_int, c_int, P(c_float),
                                                    P(c_float), P(tensor_p)]),
    "cvis_tensor_to_image": ("status", [tensor_p, c_int64, c_float, c_float, P(image_p)]),
    "cvis_map_to_image": ("status", [c_void_p, c_int64, c_int64, c_int, c_int, P(image_p)]),
    "cvis_image_overlay": ("status", [image_p, c_void_p, c_int64, c_int64, c_int, c_float,
                                      P(image_p)]),
    "cvis_image_draw_text": ("status", [image_p, c_int, c_int, c_char_p, c_int, c_uint32]),
    "cvis_text_width": (c_int, [c_char_p, c_int]),
    "cvis_grid_new": ("status", [c_int, c_int, c_int, c_int, P(grid_p)]),
    "cvis_grid_set": ("status", [grid_p, c_int, c_int, image_p, c_char_p]),
    "cvis_grid_set_caption": ("status", [grid_p, c_char_p]),
    "cvis_grid_render": ("status", [grid_p, P(image_p)]),
    "cvis_grid_free": (None, [grid_p]),
    "cvis_report_new": ("status", [c_char_p, P(report_p)]),
    "cvis_report_add_section": ("status", [report_p, c_char_p, c_char_p]),
    "cvis_report_add_image": ("status", [report_p, c_char_p, c_char_p]),
    "cvis_report_add_image_inline": ("status", [report_p, image_p, c_char_p]),
    "cvis_report_add_table": ("status", [report_p, c_int, c_int, P(c_char_p)]),
    "cvis_report_save": ("status", [report_p, c_char_p]),
    "cvis_report_free": (None, [report_p]),
})

COLORMAPS = {"jet": 0, "viridis": 1, "inferno": 2, "gray": 3, "grey": 3}
RESAMPLE = {"smooth": 0, "nearest": 1, "bilinear": 2}


def _choice(table, value, what):
    if isinstance(value, int):
        return value
    try:
        return table[value.lower()]
    except (KeyError, AttributeError):
        raise ValueError("unknown %s %r; one of %s" % (what, value, ", ".join(sorted(table))))


def _text(s):
    return None if s is None else str(s).encode("utf-8")


def _path(p):
    return os.fsencode(p)


def _to_uint8(array):
    """uint8 pixels from uint8 data, or from floats in [0,1] (clipped)."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    a = np.nan_to_num(a.astype(np.float64), nan=0.0)
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


class _Image:
    """An owned cvis_image handle, freed on close or collection."""

    def __init__(self, handle):
        self.h = handle

    def close(self):
        if self.h:
            api.cvis_image_free(self.h)
            self.h = image_p()

    def __del__(self):
        self.close()

    def array(self):
        """A copy of the pixels: (H,W) for gray, else (H,W,C)."""
        w, h = api.cvis_image_width(self.h), api.cvis_image_height(self.h)
        c = api.cvis_image_channels(self.h)
        buf = (ctypes.c_uint8 * (w * h * c)).from_address(api.cvis_image_data(self.h))
        a = np.frombuffer(buf, dtype=np.uint8).reshape(h, w, c).copy()
        return a[:, :, 0] if c == 1 else a


def _new_image():
    return _Image(image_p())


def _from_array(array):
    """A cvis_image holding a copy of an image array."""
    a = _to_uint8(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError("an image is (H,W), (H,W,1), (H,W,3) or (H,W,4); got shape %s"
                         % (np.shape(array),))
    a = np.ascontiguousarray(a)
    img = _new_image()
    api.cvis_image_new(a.shape[1], a.shape[0], a.shape[2], ctypes.byref(img.h))
    ctypes.memmove(api.cvis_image_data(img.h), a.ctypes.data, a.nbytes)
    return img


def _call_image(fn, *args):
    out = _new_image()
    fn(*args, ctypes.byref(out.h))
    try:
        return out.array()
    finally:
        out.close()


def load_image(path):
    """The image in a JPEG, PNG, BMP, TGA or GIF (first frame) file, as
    uint8 RGB (H,W,3)."""
    return _call_image(api.cvis_image_load, _path(path))


def decode_image(data):
    """The same from the bytes of such a file."""
    data = bytes(data)
    return _call_image(api.cvis_image_load_memory, data, len(data))


def resize(image, size, resample="smooth"):
    """image resized to size = (height, width).  resample: "smooth"
    (antialiased), "nearest" (as PIL and Keras's load_img), "bilinear"."""
    img = _from_array(image)
    try:
        return _call_image(api.cvis_image_resize, img.h, int(size[1]), int(size[0]),
                           _choice(RESAMPLE, resample, "resample filter"))
    finally:
        img.close()


def to_tensor(images, mean=None, std=None, size=None):
    """A float32 batch (B,H,W,3) from images: v/255, or (v/255 - mean)/std
    with per-channel mean and std.  Images of another size than `size`
    (height, width; default: the first image's) are resized smoothly."""
    handles = [_from_array(im) for im in images]
    try:
        n = len(handles)
        if n == 0:
            raise ValueError("no images")
        arr = (image_p * n)(*[h.h for h in handles])
        hh, ww = (0, 0) if size is None else (int(size[0]), int(size[1]))
        t = tensor_p()
        if mean is None and std is None:
            api.cvis_images_to_tensor(n, arr, hh, ww, ctypes.byref(t))
        else:
            m = (c_float * 3)(*(np.broadcast_to(0.0 if mean is None else mean, 3)))
            s = (c_float * 3)(*(np.broadcast_to(1.0 if std is None else std, 3)))
            api.cvis_images_to_tensor_normalized(n, arr, hh, ww, m, s, ctypes.byref(t))
        return adopt(t)
    finally:
        for h in handles:
            h.close()


def load_images(paths, size=(128, 128), resample="nearest", mean=None, std=None):
    """Loads image files for a model, as Keras's load_img(target_size=size)
    then img_to_array / 255 do: returns (images, x) with images uint8
    (B,H,W,3) (kept for overlays) and x float32 (B,H,W,3) in [0,1] (or
    normalized with mean/std).  size=None keeps the files' size (they must
    then agree).  Keras resizes with nearest neighbour by default; pass
    resample="smooth" for antialiased shrinking."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    images = []
    for p in paths:
        im = load_image(p)
        if size is not None and im.shape[:2] != tuple(size):
            im = resize(im, size, resample)
        images.append(im)
    if size is None and len({im.shape for im in images}) > 1:
        raise ValueError("images differ in size; give size=(height, width)")
    batch = np.stack(images)
    return batch, to_tensor(images, mean, std)


def to_image(x, index=0, lo=0.0, hi=1.0):
    """Image `index` of a float batch (B,H,W,C) or (B,H,W) for display:
    [lo, hi] mapped to 0..255, clipped."""
    t = Borrowed(x)
    try:
        return _call_image(api.cvis_tensor_to_image, t.handle, index, lo, hi)
    finally:
        t.close()


def _map(m):
    m = np.ascontiguousarray(m, dtype=np.float32)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.ndim != 2:
        raise ValueError("a map is (H,W); got shape %s" % (m.shape,))
    return m


def colormap(map, cmap="jet", normalize=False):
    """uint8 RGB (H,W,3) of a float map (H,W) through a colormap (jet,
    viridis, inferno, gray), as matplotlib defines them.  Values are
    clipped to [0,1], or min-max scaled first with normalize=True."""
    m = _map(map)
    return _call_image(api.cvis_map_to_image, m.ctypes.data, m.shape[0], m.shape[1],
                       _choice(COLORMAPS, cmap, "colormap"), int(bool(normalize)))


def overlay(image, cam, cmap="jet", alpha=0.5):
    """The heatmap of cam (values in [0,1], any size: resized bilinearly to
    the image) blended over image: (1-alpha)*image + alpha*cmap(cam), uint8
    (H,W,3)."""
    m = _map(cam)
    base = _from_array(image)
    try:
        return _call_image(api.cvis_image_overlay, base.h, m.ctypes.data, m.shape[0], m.shape[1],
                           _choice(COLORMAPS, cmap, "colormap"), float(alpha))
    finally:
        base.close()


def save_png(path, array):
    """Writes an image array as PNG: uint8 (H,W), (H,W,3), (H,W,4), or floats
    in [0,1]."""
    img = _from_array(array)
    try:
        api.cvis_image_save_png(img.h, _path(path))
    finally:
        img.close()


def draw_text(image, x, y, text, scale=2, color=(0, 0, 0)):
    """A copy of image with text drawn at (x, y) in the built-in font."""
    img = _from_array(image)
    try:
        rgb = (int(color[0]) << 16) | (int(color[1]) << 8) | int(color[2])
        api.cvis_image_draw_text(img.h, int(x), int(y), _text(text), int(scale), rgb)
        return img.array()
    finally:
        img.close()


def text_width(text, scale=2):
    """The width in pixels of the longest line of text in the built-in font
    at `scale` (glyphs are 12 * scale pixels high)."""
    return api.cvis_text_width(_text(text), int(scale))


class Grid:
    """rows x cols pictures with titles above and a caption below, on white.

        g = Grid(2, 4, cell_size=(96, 96))
        g.set(0, 0, feature_map_image, "map 0")
        g.caption = "Feature maps of block1_conv2"
        picture = g.render()        # uint8 (H,W,3)
    """

    def __init__(self, rows, cols, cell_size=(96, 96)):
        self._h = grid_p()
        api.cvis_grid_new(int(rows), int(cols), int(cell_size[1]), int(cell_size[0]),
                          ctypes.byref(self._h))
        self.rows, self.cols = rows, cols
        self._caption = None

    def close(self):
        if self._h:
            api.cvis_grid_free(self._h)
            self._h = grid_p()

    def __del__(self):
        self.close()

    def set(self, row, col, image, title=None):
        """Puts an image (uint8, or floats in [0,1]) in a cell."""
        img = _from_array(image)
        try:
            api.cvis_grid_set(self._h, int(row), int(col), img.h, _text(title))
        finally:
            img.close()

    @property
    def caption(self):
        return self._caption

    @caption.setter
    def caption(self, text):
        api.cvis_grid_set_caption(self._h, _text(text))
        self._caption = text

    def render(self):
        return _call_image(api.cvis_grid_render, self._h)

    def save(self, path):
        save_png(path, self.render())


class Report:
    """A static HTML page of a run's pictures (no script, nothing fetched).

        r = Report("Grad-CAM on three images")
        r.add_section("Filters", "The first layer's filters.")
        r.add_image("filters.png", "Filters of conv2d")   # path relative to the page
        r.add_table([["class", "score"], ["goldfish", "0.93"]])
        r.save("out/index.html")
    """

    def __init__(self, title="libcvis report"):
        self._h = report_p()
        api.cvis_report_new(_text(title), ctypes.byref(self._h))

    def close(self):
        if self._h:
            api.cvis_report_free(self._h)
            self._h = report_p()

    def __del__(self):
        self.close()

    def add_section(self, heading=None, text=None):
        api.cvis_report_add_section(self._h, _text(heading), _text(text))

    def add_image(self, relative_path, caption=None):
        """A picture file by its path relative to the page."""
        api.cvis_report_add_image(self._h, _text(os.fspath(relative_path)), _text(caption))

    def add_image_inline(self, image, caption=None):
        """A picture (an image array) embedded in the page."""
        img = _from_array(image)
        try:
            api.cvis_report_add_image_inline(self._h, img.h, _text(caption))
        finally:
            img.close()

    def add_table(self, rows):
        """rows: a list of equal-length lists; the first is the header."""
        rows = [list(r) for r in rows]
        if not rows or any(len(r) != len(rows[0]) for r in rows):
            raise ValueError("a table is a non-empty list of equal-length rows")
        cells = (c_char_p * (len(rows) * len(rows[0])))(
            *[_text(c) if c is not None else None for r in rows for c in r])
        api.cvis_report_add_table(self._h, len(rows), len(rows[0]), cells)

    def save(self, path):
        api.cvis_report_save(self._h, _path(path))
