"""Decoding images once: a file as an image viewer shows it -> 3-channel uint8 at the configured size.

The rules (docs/own-images.md lists them for users):

- Only regular files are opened. A dangling or looping symlink, a FIFO or device, an
  empty file, and whatever Pillow refuses to open or decode, for any reason, is a bad
  image (:class:`BadImageError`, left to ``data.on_bad_image``).
- The EXIF Orientation tag is applied (``ImageOps.exif_transpose``), as viewers do: phones
  and inspection cameras store pixels as the sensor read them and say how to turn them.
- A file of several frames (animated GIF, multi-page TIFF, MPO) gives its first frame.
- Bit depth follows fixed rules, never the image's own brightness: 8-bit images are kept
  as they are; integer images of more bits per pixel (16-bit grey PNG or TIFF, 32-bit
  integer) map ``0..data.bit_depth_range`` (default 65535: value / 257) to ``0..255``; 32-bit
  float images (mode ``F``) map ``data.float_range`` (default 0..1) to ``0..255``. A value
  outside the range (or not finite) stops the data stage naming the file rather than being
  clipped, so two exposures keep their ratio and a folder mixing depths shares one scale.
- Transparency (an alpha channel, a transparent palette entry or colour key) is composited
  on the grey level ``data.background`` (default 0, black: inspection images are dark
  where there is no signal), never read as the colour hidden under it.
- Embedded colour profiles are not applied (values are taken as sRGB); a profile other than
  sRGB is reported with the file.
- The upright, composited image is resized to ``data.image_size`` by ``data.resize``:
  ``stretch`` (the whole image, aspect changed), ``pad`` (the whole image, aspect kept,
  margins of ``data.background``) or ``crop`` (aspect kept, the centre that fills the frame).

Every departure from "the stored pixels as they are" is returned as a note, so the data
stage can name the files it turned, composited or rescaled.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps

from layerscope.core.errors import LayerscopeError


class BadImageError(LayerscopeError):
    """An image file that cannot be decoded."""


HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow modes of more than 8 bits per pixel (Pillow opens 16-bit grey PNG as "I" or "I;16")."""

FULL_16_BIT = 65535
SAMPLE_FORMAT = 339
"""TIFF tag: 1 unsigned integer, 2 signed integer, 3 floating point."""
UNIT_RANGE = (0.0, 1.0)
RESIZE_MODES = ("stretch", "pad", "crop")

# Notes: what was done to a file that was read (the data stage counts and names them).
ORIENTED = "exif-orientation-applied"
COMPOSITED = "transparency-composited"
HIGH_BIT_SCALED = "high-bit-depth-scaled"
FLOAT_SCALED = "float-scaled"
FIRST_FRAME = "first-frame-only"
PROFILE_NOT_APPLIED = "colour-profile-not-applied"


@dataclass(frozen=True)
class DecodedImage:
    """One decoded file.

    Attributes:
        pixels: (height, width, 3) uint8.
        notes: what was done beyond reading the stored pixels (the note constants above).
    """

    pixels: np.ndarray
    notes: tuple[str, ...]


def load_image(path: str | os.PathLike, size: tuple[int, int], *args, **kwargs) -> np.ndarray:
    """Decode ``path`` to an (height, width, 3) uint8 array: :func:`read_image`'s pixels, same arguments."""
    return read_image(path, size, *args, **kwargs).pixels


def read_image(
    path: str | os.PathLike,
    size: tuple[int, int],
    full_scale: int = FULL_16_BIT,
    *,
    float_range: tuple[float, float] = UNIT_RANGE,
    background: int = 0,
    resize: str = "stretch",
) -> DecodedImage:
    """Decode ``path`` as a viewer shows it, then resize it (the module's rules).

    Args:
        path: the image file.
        size: (height, width) to resize to.
        full_scale: the raw value that becomes 255 in integer images of more than 8 bits per pixel.
        float_range: the (low, high) values that become 0 and 255 in floating-point images.
        background: grey level transparent pixels and ``pad`` margins become.
        resize: one of :data:`RESIZE_MODES`.

    Returns:
        The pixels (bilinear resampling) and the notes on what was done to them.

    Raises:
        BadImageError: the file is not a regular file or Pillow cannot open or decode it.
        LayerscopeError: a value outside ``0..full_scale`` or ``float_range``.
    """
    _check_regular_file(path)
    notes: list[str] = []
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "L" and 2 in np.atleast_1d(getattr(image, "tag_v2", {}).get(SAMPLE_FORMAT, 1)):
                raise BadImageError(f"cannot read image {path}: signed 8-bit TIFF, which Pillow reads as unsigned")
            if getattr(image, "n_frames", 1) > 1:
                notes.append(FIRST_FRAME)
            upright = _upright(image, notes)
            if _non_srgb_profile(upright):
                notes.append(PROFILE_NOT_APPLIED)
            alpha = _alpha(upright)
            rgb = _to_rgb(upright, full_scale, float_range, path, notes)
            if alpha is not None:
                rgb = Image.composite(rgb, Image.new("RGB", rgb.size, (background,) * 3), alpha)
                notes.append(COMPOSITED)
            resized = fit(rgb, size, resize, background)
    except LayerscopeError:
        raise
    except Exception as err:  # Pillow's plugins raise many types on damaged or odd files
        raise BadImageError(f"cannot read image {path}: {_reason(err, path)}") from None
    return DecodedImage(np.asarray(resized, dtype=np.uint8), tuple(notes))


def fit(image: Image.Image, size: tuple[int, int], mode: str, background: int = 0) -> Image.Image:
    """``image`` at (height, width) ``size`` by ``data.resize`` (bilinear in every mode).

    Args:
        image: an RGB image.
        size: (height, width).
        mode: ``stretch`` (the whole image, aspect changed), ``pad`` (the whole image at the
            largest size that fits, centred on ``background``; at least one pixel across, so
            a thin strip never vanishes) or ``crop`` (the centre at the aspect of ``size``,
            scaled to fill it).
        background: the grey level of ``pad``'s margins.

    Returns:
        The resized image.
    """
    height, width = size
    if mode == "stretch":
        return image.resize((width, height), Image.Resampling.BILINEAR)
    if mode == "crop":
        return ImageOps.fit(image, (width, height), method=Image.Resampling.BILINEAR)
    if mode != "pad":
        raise LayerscopeError(f"data.resize: unknown mode '{mode}' (choose {', '.join(RESIZE_MODES)})")
    scale = min(width / image.width, height / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("RGB", (width, height), (background,) * 3)
    canvas.paste(image.resize(inner, Image.Resampling.BILINEAR), ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas


def _check_regular_file(path: str | os.PathLike) -> None:
    """Refuse, as a bad image, what is not a readable regular file (opening a FIFO would hang)."""
    try:
        info = os.stat(path)
    except OSError as err:
        if os.path.islink(path) and not os.path.exists(path):
            loop = err.errno == errno.ELOOP
            what = "a symlink loop" if loop else f"a dangling symlink (to {os.readlink(path)}, which does not exist)"
            raise BadImageError(f"cannot read image {path}: {what}") from None
        raise BadImageError(f"cannot read image {path}: {err.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadImageError(f"cannot read image {path}: not a regular file")
    if info.st_size == 0:
        raise BadImageError(f"cannot read image {path}: empty file (0 bytes)")


def _upright(image: Image.Image, notes: list[str]) -> Image.Image:
    """The image turned as its EXIF Orientation tag says (Pillow reads damaged EXIF as none, with a warning)."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) not in range(2, 9):
        return image
    notes.append(ORIENTED)
    return ImageOps.exif_transpose(image)


def _non_srgb_profile(image: Image.Image) -> bool:
    """Whether the image embeds a colour profile that is not sRGB (one a colour-managed viewer would apply)."""
    profile = image.info.get("icc_profile")
    if not profile:
        return False
    try:
        from PIL import ImageCms

        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    except Exception:  # no littlecms, or a profile it cannot parse: report it
        return True
    return "srgb" not in description.lower()


def _alpha(image: Image.Image) -> Image.Image | None:
    """The image's opacity as an "L" mask, or None when every pixel is opaque."""
    if not image.has_transparency_data:
        return None
    if image.mode in HIGH_BIT_MODES or image.mode == "F":
        opaque = np.asarray(image) != image.info["transparency"]  # a colour key on the raw values
        alpha = Image.fromarray(np.where(opaque, 255, 0).astype(np.uint8))
    else:
        alpha = image.convert("RGBA").getchannel("A")  # alpha channel, palette entry or colour key
    return None if alpha.getextrema()[0] == 255 else alpha


def _to_rgb(
    image: Image.Image,
    full_scale: int,
    float_range: tuple[float, float],
    path: str | os.PathLike,
    notes: list[str],
) -> Image.Image:
    """8-bit RGB by the bit-depth rules (transparency is handled separately)."""
    if image.mode == "F":
        notes.append(FLOAT_SCALED)
        return Image.fromarray(_float_to_8_bit(np.asarray(image), float_range, path)).convert("RGB")
    if image.mode in HIGH_BIT_MODES:
        notes.append(HIGH_BIT_SCALED)
        return Image.fromarray(_to_8_bit(np.asarray(image), full_scale, path)).convert("RGB")
    return image.convert("RGB")


def _to_8_bit(array: np.ndarray, full_scale: int, path: str | os.PathLike) -> np.ndarray:
    """``round(255 * value / full_scale)`` as uint8; values outside ``0..full_scale`` are refused."""
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > full_scale:
        raise LayerscopeError(
            f"image {path} has values {low}..{high}, outside 0..{full_scale} (data.bit_depth_range); "
            "set data.bit_depth_range to the camera's full-scale value"
        )
    return np.floor(array.astype(np.float64) * 255.0 / full_scale + 0.5).astype(np.uint8)


def _float_to_8_bit(array: np.ndarray, float_range: tuple[float, float], path: str | os.PathLike) -> np.ndarray:
    """``round(255 * (value - low) / (high - low))`` as uint8; values outside ``low..high`` are refused."""
    low, high = float_range
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise LayerscopeError(f"floating-point image {path} holds NaN or infinite values; fix or remove it")
    least, most = float(values.min()), float(values.max())
    if least < low or most > high:
        raise LayerscopeError(
            f"floating-point image {path} has values {least:g}..{most:g}, outside {low:g}..{high:g} "
            "(data.float_range); set data.float_range to the range its values are in"
        )
    return np.floor((values - low) * 255.0 / (high - low) + 0.5).astype(np.uint8)


def _reason(err: Exception, path: str | os.PathLike) -> str:
    """Pillow's message without the path it repeats, with the exception's type unless an ``OSError``."""
    message = str(err).replace(f" '{path}'", "") or type(err).__name__
    return message if isinstance(err, OSError) else f"{message} ({type(err).__name__})"
