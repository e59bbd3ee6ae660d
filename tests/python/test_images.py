"""cvis.images against independent references: PIL writes and decodes the
files and resizes with NEAREST, matplotlib defines the colormaps, torchvision
normalizes, numpy blends."""
import importlib
import io
import os

import numpy as np
import pytest

import cvis


def need(module):
    """A module the test cannot do without: under CI it must be there."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


def pattern(h=13, w=17, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_lossless_files_written_by_pil(tmp_path):
    Image = need("PIL.Image")
    a = pattern()
    for ext, fmt in (("png", "PNG"), ("bmp", "BMP"), ("tga", "TGA")):
        p = tmp_path / ("a." + ext)
        Image.fromarray(a).save(p, fmt)
        np.testing.assert_array_equal(cvis.load_image(p), a)
    # palette PNG and gray PNG become RGB
    p = tmp_path / "pal.png"
    pal = Image.fromarray(a).convert("P")
    pal.save(p)
    np.testing.assert_array_equal(cvis.load_image(p), np.asarray(pal.convert("RGB")))
    p = tmp_path / "gray.png"
    Image.fromarray(a[:, :, 0]).save(p)
    np.testing.assert_array_equal(cvis.load_image(p), np.repeat(a[:, :, :1], 3, axis=2))


def test_gif_first_frame(tmp_path):
    Image = need("PIL.Image")
    a, b = pattern(8, 8, 1), pattern(8, 8, 2)
    fa, fb = Image.fromarray(a).convert("P"), Image.fromarray(b).convert("P")
    p = tmp_path / "anim.gif"
    fa.save(p, save_all=True, append_images=[fb], duration=100, loop=0)
    first = np.asarray(Image.open(p).convert("RGB"))
    np.testing.assert_array_equal(cvis.load_image(p), first)


def test_jpeg_close_to_libjpeg(tmp_path):
    Image = need("PIL.Image")
    y, x = np.mgrid[0:32, 0:32]
    a = np.stack([x * 8, y * 8, np.full_like(x, 128)], axis=2).astype(np.uint8)
    p = tmp_path / "a.jpg"
    Image.fromarray(a).save(p, quality=92)
    ours = cvis.load_image(p).astype(int)
    theirs = np.asarray(Image.open(p).convert("RGB")).astype(int)
    assert np.abs(ours - theirs).mean() < 1.5
    assert np.abs(ours - a).max() <= 16


def test_load_images_like_keras(tmp_path):
    """load_img(target_size=(h, w)) resizes with PIL's NEAREST; x = img/255."""
    Image = need("PIL.Image")
    paths = []
    for i, (h, w) in enumerate([(50, 70), (128, 128), (301, 157)]):
        p = tmp_path / ("%d.png" % i)
        Image.fromarray(pattern(h, w, i)).save(p)
        paths.append(p)
    images, x = cvis.load_images(paths, size=(40, 60))
    assert images.shape == (3, 40, 60, 3) and images.dtype == np.uint8
    assert x.shape == (3, 40, 60, 3) and x.dtype == np.float32
    for i, p in enumerate(paths):
        ref = np.asarray(Image.open(p).convert("RGB").resize((60, 40), Image.NEAREST))
        np.testing.assert_array_equal(images[i], ref)
    np.testing.assert_array_equal(x, images.astype(np.float32) / np.float32(255))


def test_normalized_batch_matches_torchvision():
    torch = need("torch")
    transforms = need("torchvision.transforms")
    Image = need("PIL.Image")
    a = pattern(20, 24, 3)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    ref = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])(
        Image.fromarray(a))
    ref = ref.permute(1, 2, 0).numpy()
    x = cvis.to_tensor([a], mean=mean, std=std)
    assert x.shape == (1, 20, 24, 3)
    np.testing.assert_allclose(x[0], ref, rtol=0, atol=1e-6)
    assert torch is not None


def test_tensor_image_round_trip():
    a = pattern(9, 11, 4)
    x = cvis.to_tensor([a, 255 - a])
    np.testing.assert_array_equal(cvis.to_image(x, 0), a)
    np.testing.assert_array_equal(cvis.to_image(x, 1), 255 - a)


def test_resize_nearest_matches_pil():
    Image = need("PIL.Image")
    a = pattern(37, 23, 5)
    for h, w in ((128, 128), (10, 7), (37, 50)):
        ref = np.asarray(Image.fromarray(a).resize((w, h), Image.NEAREST))
        np.testing.assert_array_equal(cvis.resize(a, (h, w), "nearest"), ref)
    smooth = cvis.resize(np.full((30, 30, 3), 99, np.uint8), (7, 9))
    assert smooth.shape == (7, 9, 3) and (smooth == 99).all()


@pytest.mark.parametrize("name", ["jet", "viridis", "inferno", "gray"])
def test_colormaps_match_matplotlib(name):
    matplotlib = need("matplotlib")
    cmap = matplotlib.colormaps[name]
    # every table entry, and values between entries (which entry is picked)
    for values in (np.linspace(0, 1, 256), np.linspace(0, 1, 1001)):
        values = values.astype(np.float32)
        ours = cvis.colormap(values[None, :], name)[0]
        ref = np.round(cmap(values)[:, :3] * 255).astype(np.uint8)
        np.testing.assert_array_equal(ours, ref)


def test_colormap_normalize_and_errors():
    m = np.array([[2.0, 4.0, 6.0]])
    np.testing.assert_array_equal(cvis.colormap(m, "gray", normalize=True)[0, :, 0], [0, 128, 255])
    np.testing.assert_array_equal(cvis.colormap(m, "gray")[0, :, 0], [255, 255, 255])
    with pytest.raises(cvis.NonFiniteError):
        cvis.colormap(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError):
        cvis.colormap(m, "rainbow")


def test_overlay_matches_numpy_blend():
    matplotlib = need("matplotlib")
    img = pattern(16, 20, 6)
    y, x = np.mgrid[0:16, 0:20]
    cam = np.exp(-((x - 12) ** 2 + (y - 6) ** 2) / 30.0).astype(np.float32)
    ours = cvis.overlay(img, cam, "jet", 0.5).astype(int)
    heat = np.round(matplotlib.colormaps["jet"](cam)[..., :3] * 255)
    ref = np.floor(0.5 * img + 0.5 * heat + 0.5).astype(int)  # halves round up
    np.testing.assert_array_equal(ours, ref)
    # a map at layer resolution is resized to the image
    small = cvis.overlay(img, cam[::4, ::4], "viridis", 0.3)
    assert small.shape == (16, 20, 3)


def test_save_png_round_trip(tmp_path):
    Image = need("PIL.Image")
    for a in (pattern(5, 6, 7), pattern(5, 6, 8)[:, :, 0],
              np.concatenate([pattern(5, 6, 9), np.full((5, 6, 1), 77, np.uint8)], axis=2)):
        p = tmp_path / "x.png"
        cvis.save_png(p, a)
        np.testing.assert_array_equal(np.asarray(Image.open(p)), a)
    cvis.save_png(tmp_path / "f.png", np.array([[0.0, 0.5, 1.0]]))
    np.testing.assert_array_equal(cvis.load_image(tmp_path / "f.png")[0, :, 0], [0, 128, 255])


def test_bad_files(tmp_path):
    with pytest.raises(cvis.IOError):
        cvis.load_image(tmp_path / "missing.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(cvis.FormatError):
        cvis.load_image(tmp_path / "empty.jpg")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    with pytest.raises(cvis.FormatError) as e:
        cvis.load_image(tmp_path / "junk.png")
    assert "junk.png" in str(e.value)
    huge = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + (100000).to_bytes(4, "big") * 2 +
            b"\x08\x02\x00\x00\x00" + b"\x00" * 4)
    with pytest.raises((cvis.LimitError, cvis.FormatError)):
        cvis.decode_image(huge)


def test_grid_and_report(tmp_path):
    g = cvis.Grid(2, 4, cell_size=(32, 32))
    for k in range(8):
        g.set(k // 4, k % 4, np.full((7, 7), k * 30, np.uint8), "f%d" % k)
    g.caption = "eight filters"
    pic = g.render()
    assert pic.shape == (20 + 2 * (26 + 32) + 8 + 8 + 24, 20 + 4 * 32 + 3 * 8, 3)
    assert (pic[0, 0] == 255).all()
    g.save(tmp_path / "grid.png")
    with pytest.raises(cvis.RangeError):
        g.set(2, 0, np.zeros((2, 2), np.uint8))

    r = cvis.Report("Run <1>")
    r.add_section("Filters", "two\n\nparagraphs")
    r.add_image("grid.png", "the grid")
    r.add_image_inline(pic, "inline")
    r.add_table([["class", "score"], ["<tench>", 0.5]])
    with pytest.raises(cvis.InvalidArgumentError):
        r.add_image("https://example.com/x.png")
    r.save(tmp_path / "index.html")
    html = (tmp_path / "index.html").read_text()
    assert "<title>Run &lt;1&gt;</title>" in html
    assert "<script" not in html
    assert 'src="grid.png"' in html and "data:image/png;base64," in html
    assert "<td>&lt;tench&gt;</td><td>0.5</td>" in html


def test_draw_text():
    img = cvis.draw_text(np.full((20, 40, 3), 255, np.uint8), 1, 1, "Hi", 1, (255, 0, 0))
    red = (img[:, :, 0] == 255) & (img[:, :, 1] == 0)
    assert 5 < red.sum() < 200
