"""JPEG XL on the wire (DICOM Supplement 232): fewer bytes than JPEG-LS or JPEG 2000, same pixels.

Two transfer syntaxes travel, and only between the site agent and the centre (Orthanc 1.10 and
today's viewers cannot decode JPEG XL; the centre re-encodes before storing, see
platform/ingest/jpegxl_restore.py):

- JPEG XL Lossless (1.2.840.10008.1.2.4.110) for pixels that can be decoded without loss
  (uncompressed, JPEG lossless, JPEG-LS lossless, JPEG 2000 lossless, RLE): one codestream per
  frame, encapsulated, decoded and compared with the source before anything is sent.
- JPEG XL JPEG Recompression (…4.111) for JPEG baseline (…4.50): each frame's JPEG is repacked
  losslessly and restores to the very same bytes (checked here too).

The wire format, in one place for both ends: samples are `Bits Stored` unsigned integers; a
signed image (Pixel Representation 1) travels as offset binary, value + 2^(Bits Stored - 1),
which keeps neighbouring values neighbours (two's complement puts -1 next to 65535 and costs
about 10 % on a head CT). Only grey (one sample) and RGB images whose values fit Bits Stored go.
The file carries the SHA-256 of the source's pixels (of its JPEG frames, for a recompression) in a
private element, (0009,xx01) of creator "JOLIBA WIRE 1", which the centre checks and removes:
the manifest's SHA-256 proves the file crossed the link intact, this one that the centre decoded
the pixels the site had (libjxl's fastest mode, effort 1, decodes a damaged stream without error).

Effort is chosen per image so that encoding never costs more time than it saves on the link:
see `worth_probing` and `choose_effort`; docs/ingest-protocol.md « JPEG XL » has the figures.

This module imports only the standard library at load time; numpy, pydicom and imagecodecs are
imported where they are used (the centre's checker child imports it too, and starts small).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pydicom.dataset import Dataset

JPEGXL_LOSSLESS = "1.2.840.10008.1.2.4.110"
JPEGXL_JPEG_RECOMPRESSION = "1.2.840.10008.1.2.4.111"
JPEGXL_ANY = "1.2.840.10008.1.2.4.112"  # possibly lossy: never sent, refused at the centre
JPEGXL_SYNTAXES = (JPEGXL_LOSSLESS, JPEGXL_JPEG_RECOMPRESSION, JPEGXL_ANY)
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
# Sources whose decoded pixels are the acquired ones, so a JPEG XL of them is lossless too.
LOSSLESS_SOURCES = {
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.1.99",  # deflated
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless, first-order prediction
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless only
    "1.2.840.10008.1.2.5",  # RLE
}

# --- Effort ------------------------------------------------------------------------------------
# 512 kbit/s: the link of the measurements, a usual district VSAT or 3G share. Used until
# the agent has timed transfers of its own (siteagent/linkrate.py).
DEFAULT_LINK_BYTES_PER_S = 64_000
PROBE_EFFORT = 3
# Encoding seconds per megapixel on one core of the development machine (imagecodecs 2026.3,
# libjxl 0.11; head and chest CT slices, tibia, hip, hand and dental CR, shoulder RF, mammogram:
# medians, rounded up, of runs that varied 2-3x with the machine's load). Only the ratios matter
# at a site: the probe measures the site's own speed and scales the table (`SpeedEstimate`).
SECONDS_PER_MEGAPIXEL = {3: 0.2, 4: 0.5, 5: 1.2, 7: 2.0}
# Bytes at each effort against the probe's, medians of the same images (effort 5 wins 15 % on
# some CR, nothing on the mammogram): what a higher effort can be expected to win.
SIZE_VS_PROBE = {3: 1.0, 4: 0.98, 5: 0.92, 7: 0.91}
# Probe bytes against the best of JPEG-LS/J2K before the probe is made (median of the real images).
PRIOR_RATIO = 0.93
# The largest gain seen from effort 5-7 over the probe (hand and hip CR): above it, a sample is
# never worth taking.
OPTIMISTIC_SIZE_VS_PROBE = 0.84
SAMPLE_ABOVE_MEGAPIXELS = 1.0  # larger images measure their own gain on a central tile
TILE = 512
MAX_FRAMES_FOR_EFFORT = 4  # beyond, stay at the probe's effort: a cine's frames differ little
# Pipelined, a whole-image encode at effort 5 is simply tried when the table says it takes at most
# this share of the file's link time: a tile can misjudge it (the cat DX's tile says effort 5
# wins nothing; on the whole image it wins 1.0 % over the probe, 66 kB).
FREE_SHARE_OF_LINK_TIME = 0.5


@dataclass
class SpeedEstimate:
    """How much slower (>1) or faster than the table this machine encodes, learnt from the probes
    (a running mean: one image's timing, on a shared machine, is noisy)."""

    factor: float = 1.0

    def learn(self, seconds: float, expected: float) -> None:
        measured = min(10.0, max(0.25, seconds / max(expected, 1e-3)))
        self.factor = 0.5 * self.factor + 0.5 * measured


_speed = SpeedEstimate()


def register_uids() -> None:
    """Teach pydicom 3.0 the Supplement 232 UIDs (it knows them from 3.1) so it writes and reads
    them as encapsulated explicit VR little endian."""
    from pydicom._uid_dict import UID_dictionary

    for uid, name, keyword in (
        (JPEGXL_LOSSLESS, "JPEG XL Lossless", "JPEGXLLossless"),
        (JPEGXL_JPEG_RECOMPRESSION, "JPEG XL JPEG Recompression", "JPEGXLJPEGRecompression"),
        (JPEGXL_ANY, "JPEG XL", "JPEGXL"),
    ):
        UID_dictionary.setdefault(uid, (name, "Transfer Syntax", "", "", keyword))


def encoding_cost(seconds: float, sent_bytes: float, link_bytes_per_s: float, *, pipelined: bool) -> float:
    """Wall seconds that `seconds` of encoding add to a sending. Serial (today's agent encodes a
    study before sending it): all of them. Pipelined (the next file encoded while this one is
    sent): only what the encoder takes beyond the link's time for a file like this one."""
    if not pipelined:
        return seconds
    return max(0.0, seconds - sent_bytes / max(link_bytes_per_s, 1.0))


def worth_probing(
    *,
    best_bytes: int,
    megapixels: float,
    link_bytes_per_s: float,
    speed: float = 1.0,
    pipelined: bool = False,
    prior: float = PRIOR_RATIO,
) -> bool:
    """Whether the cheap probe (effort 3) is expected to save more link time than it costs.

    Expected saving: (1 - prior) of the best existing size, at the link's rate; cost: the table's
    time for the probe, scaled by this machine's measured speed. `prior` is PRIOR_RATIO, or for a
    large image what a tile of it gave (`tile_ratio`). On a fast link, a small image or a noisy
    one, the probe is skipped and JPEG-LS / J2K go as before.
    """
    rate = max(link_bytes_per_s, 1.0)
    saving_s = best_bytes * (1 - prior) / rate
    cost = speed * SECONDS_PER_MEGAPIXEL[PROBE_EFFORT] * megapixels
    return saving_s > 0 and encoding_cost(cost, best_bytes * prior, rate, pipelined=pipelined) <= saving_s


def tile_ratio(frame: NDArray[Any], layout: PixelLayout) -> float:
    """JPEG XL at the probe's effort against JPEG-LS on a central tile: the probe's likely gain on
    a large image, for a few hundredths of a second (the noisy cat DX: 1.0, nothing to win)."""
    import imagecodecs

    top, left = max(0, (layout.rows - TILE) // 2), max(0, (layout.columns - TILE) // 2)
    tile = to_codestream_samples(frame[top : top + TILE, left : left + TILE], layout)
    jxl = imagecodecs.jpegxl_encode(
        tile, lossless=True, effort=PROBE_EFFORT, bitspersample=layout.bits_stored, numthreads=_threads()
    )
    return len(jxl) / max(len(imagecodecs.jpegls_encode(tile)), 1)


def choose_effort(
    *,
    best_bytes: int,
    probe_bytes: int,
    probe_seconds: float,
    megapixels: float,
    link_bytes_per_s: float,
    speed: float = 1.0,
    size_vs_probe: dict[int, float] | None = None,
    seconds_per_megapixel: dict[int, float] | None = None,
    pipelined: bool = False,
) -> int:
    """The effort to send at, given what the probe gave: the one with the largest net gain.

    Net gain of effort e = link seconds saved against the best existing codec,
    (best_bytes - expected_bytes(e)) / rate, minus the seconds encoding adds (`encoding_cost`,
    probe included). expected_bytes(e) = probe_bytes × size_vs_probe[e]; encoding seconds =
    seconds_per_megapixel[e] × megapixels (the table × this machine's speed by default). A large
    image passes what a tile of it measured (`sample_gain`). A higher effort is taken only when
    its net gain is positive and beats the probe's; otherwise the probe's codestream is sent.
    """
    rate = max(link_bytes_per_s, 1.0)
    sizes = size_vs_probe or SIZE_VS_PROBE
    seconds = seconds_per_megapixel or {e: speed * t for e, t in SECONDS_PER_MEGAPIXEL.items()}
    probe_cost = encoding_cost(probe_seconds, probe_bytes, rate, pipelined=pipelined)
    best_effort, best_net = PROBE_EFFORT, (best_bytes - probe_bytes) / rate - probe_cost
    for effort in sorted(sizes):
        if effort <= PROBE_EFFORT or effort not in seconds:
            continue
        expected = probe_bytes * sizes[effort]
        spent = probe_seconds + seconds[effort] * megapixels
        net = (best_bytes - expected) / rate - encoding_cost(spent, expected, rate, pipelined=pipelined)
        if net > 0 and net > best_net:
            best_effort, best_net = effort, net
    return best_effort


def free_to_try(
    *, megapixels: float, sent_bytes: float, link_bytes_per_s: float, spent: float, speed: float = 1.0
) -> bool:
    """Whether an agent encoding while sending can encode the whole image at effort 5 as well and
    keep the smaller: the probe, the tile and that encode together (the table's time at this
    machine's speed) take at most FREE_SHARE_OF_LINK_TIME of the file's time on the link."""
    seconds = spent + speed * SECONDS_PER_MEGAPIXEL[5] * megapixels
    return seconds <= FREE_SHARE_OF_LINK_TIME * sent_bytes / max(link_bytes_per_s, 1.0)


def worth_sampling(
    *,
    probe_bytes: int,
    megapixels: float,
    link_bytes_per_s: float,
    speed: float = 1.0,
    pipelined: bool = False,
) -> bool:
    """Whether measuring a tile at higher efforts can pay: the best gain ever seen
    (OPTIMISTIC_SIZE_VS_PROBE) must save more than the tile and an effort-5 encode would cost."""
    if megapixels <= SAMPLE_ABOVE_MEGAPIXELS:
        return False
    rate = max(link_bytes_per_s, 1.0)
    tile_mp = TILE * TILE / 1e6
    tile_s = sum(SECONDS_PER_MEGAPIXEL[e] for e in (PROBE_EFFORT, 5, 7)) * tile_mp
    cost = speed * (tile_s + SECONDS_PER_MEGAPIXEL[5] * megapixels)
    expected = probe_bytes * OPTIMISTIC_SIZE_VS_PROBE
    saving_s = probe_bytes * (1 - OPTIMISTIC_SIZE_VS_PROBE) / rate
    return saving_s > encoding_cost(cost, expected, rate, pipelined=pipelined)


def sample_gain(frame: NDArray[Any], layout: PixelLayout) -> tuple[dict[int, float], dict[int, float], float]:
    """What higher efforts give on this image: a central tile encoded at the probe's effort and at
    5 and 7. Returns (bytes against the probe's, seconds per megapixel, seconds the tile took)."""
    import imagecodecs

    top, left = max(0, (layout.rows - TILE) // 2), max(0, (layout.columns - TILE) // 2)
    tile = to_codestream_samples(frame[top : top + TILE, left : left + TILE], layout)
    tile_mp = tile.shape[0] * tile.shape[1] / 1e6
    sizes, seconds = {}, {}
    started = time.perf_counter()
    for effort in (PROBE_EFFORT, 5, 7):
        at = time.perf_counter()
        encoded = imagecodecs.jpegxl_encode(
            tile, lossless=True, effort=effort, bitspersample=layout.bits_stored, numthreads=_threads()
        )
        sizes[effort] = len(encoded)
        # The full encode also decodes to verify: about a third more than the encoder alone.
        seconds[effort] = 1.3 * (time.perf_counter() - at) / tile_mp
    ratios = {e: sizes[e] / sizes[PROBE_EFFORT] for e in sizes}
    return ratios, seconds, time.perf_counter() - started


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


# --- The wire format ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PixelLayout:
    """What the codestreams must hold, from the DICOM header (both ends derive it the same way)."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool

    @classmethod
    def of(cls, ds: Dataset) -> PixelLayout:
        return cls(
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            frames=int(ds.get("NumberOfFrames") or 1),
            samples=int(ds.get("SamplesPerPixel") or 1),
            bits_allocated=int(ds.BitsAllocated),
            bits_stored=int(ds.get("BitsStored") or ds.BitsAllocated),
            signed=int(ds.get("PixelRepresentation") or 0) == 1,
        )

    def unsupported(self, photometric: str) -> str:
        """Why this image cannot travel as JPEG XL ("" if it can)."""
        if self.samples == 1 and photometric not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"):
            return f"photometric {photometric}"
        if self.samples == 3 and photometric != "RGB":
            return f"photometric {photometric}"
        if self.samples not in (1, 3):
            return f"{self.samples} samples"
        if self.bits_allocated not in (8, 16) or not 2 <= self.bits_stored <= self.bits_allocated:
            return f"bits {self.bits_stored}/{self.bits_allocated}"
        return ""

    @property
    def offset(self) -> int:
        return 1 << (self.bits_stored - 1) if self.signed else 0

    @property
    def dtype(self) -> str:
        return f"{'i' if self.signed else 'u'}{self.bits_allocated // 8}"


def to_codestream_samples(frame: NDArray[Any], layout: PixelLayout) -> NDArray[Any]:
    """One frame as the unsigned samples a codestream holds; ValueError if a value does not fit."""
    import numpy as np

    values = frame.astype(np.int32) + layout.offset
    if values.min() < 0 or values.max() >= 1 << layout.bits_stored:
        raise ValueError("values outside Bits Stored")
    return values.astype(np.uint8 if layout.bits_stored <= 8 else np.uint16)


def from_codestream_samples(decoded: NDArray[Any], layout: PixelLayout) -> NDArray[Any]:
    """Decoded samples back to DICOM pixel values; ValueError if they do not match the layout."""
    import numpy as np

    expected = (layout.rows, layout.columns) + ((layout.samples,) if layout.samples > 1 else ())
    if decoded.shape != expected:
        raise ValueError(f"shape {decoded.shape} instead of {expected}")
    if decoded.dtype.kind != "u" or int(decoded.max(initial=0)) >= 1 << layout.bits_stored:
        raise ValueError("samples outside Bits Stored")
    return (decoded.astype(np.int32) - layout.offset).astype(layout.dtype)


DIGEST_GROUP, DIGEST_CREATOR, DIGEST_ELEMENT = 0x0009, "JOLIBA WIRE 1", 0x01


def pixel_digest(pixels: NDArray[Any], layout: PixelLayout) -> str:
    """SHA-256 of the pixel values, frames in order, each value little-endian in Bits Allocated."""
    import hashlib

    import numpy as np

    values = np.ascontiguousarray(pixels, dtype=np.dtype(layout.dtype).newbyteorder("<"))
    return hashlib.sha256(values.tobytes()).hexdigest()


def frames_digest(frames: list[bytes]) -> str:
    """SHA-256 of the JPEG frames (fragment padding included), in order."""
    import hashlib

    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame)
    return digest.hexdigest()


def take_digest(ds: Dataset) -> str | None:
    """The digest the agent put in `ds`, removed from it (the archive never sees it); None if absent."""
    try:
        block = ds.private_block(DIGEST_GROUP, DIGEST_CREATOR)
    except KeyError:
        return None
    tag = block.get_tag(DIGEST_ELEMENT)
    value = str(ds[tag].value) if tag in ds else None
    if tag in ds:
        del ds[tag]
    creator = (DIGEST_GROUP << 16) | (block.block_start >> 8)
    del ds[creator]
    return value


def encode_frame(frame: NDArray[Any], layout: PixelLayout, effort: int) -> bytes:
    """A lossless codestream of one frame, decoded and compared before it is returned."""
    import imagecodecs
    import numpy as np

    samples = to_codestream_samples(frame, layout)
    data = bytes(
        imagecodecs.jpegxl_encode(
            samples,
            lossless=True,
            effort=effort,
            bitspersample=layout.bits_stored,
            photometric="RGB" if layout.samples == 3 else "GRAY",
            numthreads=_threads(),
        )
    )
    if not np.array_equal(decode_frame(data, layout), frame):
        raise ValueError("JPEG XL: decoded pixels differ")
    return data


def decode_frame(data: bytes, layout: PixelLayout) -> NDArray[Any]:
    """One codestream to DICOM pixel values, its header checked against the layout first (so a
    codestream declaring a huge image is refused before any memory is taken for it)."""
    import imagecodecs

    width, height = codestream_dimensions(data)
    if (height, width) != (layout.rows, layout.columns):
        raise ValueError(f"codestream is {width}x{height}, header says {layout.columns}x{layout.rows}")
    return from_codestream_samples(imagecodecs.jpegxl_decode(data, numthreads=_threads()), layout)


def frames_of(ds: Dataset) -> list[NDArray[Any]]:
    """The source's decoded frames (a single-frame image is a list of one)."""
    arr = ds.pixel_array
    layout = PixelLayout.of(ds)
    if layout.frames == 1:
        return [arr]
    return list(arr)


@dataclass(frozen=True)
class Encoded:
    """A dataset made ready for the wire, and what it cost."""

    dataset: Dataset
    syntax: str
    pixel_bytes: int
    seconds: float
    effort: int | None


def encode_lossless(
    ds: Dataset,
    *,
    best_bytes: int,
    link_bytes_per_s: float,
    force_effort: int | None = None,
    pipelined: bool = False,
    best_is_jpegls: bool = False,
) -> Encoded | None:
    """`ds` with JPEG XL Lossless pixel data, or None when it would not pay (or cannot be done).

    `best_bytes` is the pixel data size of the best existing choice (as-is, JPEG-LS or J2K);
    `best_is_jpegls`: it is a JPEG-LS or J2K encode of these pixels, which a tile can be judged
    against (not an as-is JPEG lossless, which JPEG XL beats by far more).
    The effort: the probe's (3) if `worth_probing`, then a higher one if `choose_effort` says so,
    from the tables for a small image, from a tile of it for a large one (`worth_sampling`).
    """
    import numpy as np
    from pydicom.encaps import encapsulate

    layout = PixelLayout.of(ds)
    if layout.unsupported(str(ds.get("PhotometricInterpretation", ""))):
        return None
    megapixels = layout.rows * layout.columns * layout.frames / 1e6
    rate = link_bytes_per_s
    judge: dict[str, Any] = {
        "best_bytes": best_bytes,
        "megapixels": megapixels,
        "link_bytes_per_s": rate,
        "pipelined": pipelined,
    }
    if force_effort is None and not worth_probing(speed=_speed.factor, **judge):
        return None
    started = time.perf_counter()
    frames = frames_of(ds)
    if (
        force_effort is None
        and best_is_jpegls
        and megapixels > SAMPLE_ABOVE_MEGAPIXELS
        and layout.samples == 1
    ):
        try:
            prior = tile_ratio(frames[0], layout)
        except Exception:  # noqa: BLE001 - no tile: the median prior stands
            prior = PRIOR_RATIO
        if not worth_probing(speed=_speed.factor, prior=prior, **judge):
            return None
    effort = force_effort or PROBE_EFFORT
    encoding = time.perf_counter()
    try:
        streams = [encode_frame(f, layout, effort) for f in frames]
    except Exception:  # a codec refusal means "not JPEG XL"
        return None
    probe_s = time.perf_counter() - encoding  # the encoder's speed, without the source's decoding
    probe_bytes = sum(map(len, streams))
    if force_effort is None and layout.frames <= MAX_FRAMES_FOR_EFFORT:
        _speed.learn(probe_s, SECONDS_PER_MEGAPIXEL[PROBE_EFFORT] * megapixels)
        measured: dict[str, Any] = {}
        spent = probe_s
        if worth_sampling(
            probe_bytes=probe_bytes,
            megapixels=megapixels,
            link_bytes_per_s=rate,
            speed=_speed.factor,
            pipelined=pipelined,
        ):
            try:
                sizes, seconds, tile_s = sample_gain(frames[0], layout)
                measured = {"size_vs_probe": sizes, "seconds_per_megapixel": seconds}
                spent += tile_s
            except Exception:  # noqa: BLE001 - no sample: the tables decide
                measured = {}
        chosen = choose_effort(
            best_bytes=best_bytes,
            probe_bytes=probe_bytes,
            probe_seconds=spent,
            megapixels=megapixels,
            link_bytes_per_s=rate,
            speed=_speed.factor,
            pipelined=pipelined,
            **measured,
        )
        if (
            chosen == effort
            and pipelined
            and free_to_try(
                megapixels=megapixels,
                sent_bytes=probe_bytes,
                link_bytes_per_s=rate,
                spent=spent,
                speed=_speed.factor,
            )
        ):
            chosen = 5  # measured, not estimated: kept only if smaller
        if chosen != effort:
            try:
                better = [encode_frame(f, layout, chosen) for f in frames]
                if sum(map(len, better)) < probe_bytes:
                    streams, effort = better, chosen
            except Exception:  # noqa: BLE001 - keep the probe's codestreams
                pass
    pixel_data = encapsulate(streams, has_bot=layout.frames > 1)
    digest = pixel_digest(frames[0] if layout.frames == 1 else np.stack(frames), layout)
    return Encoded(
        _on_the_wire(ds, pixel_data, JPEGXL_LOSSLESS, digest),
        JPEGXL_LOSSLESS,
        len(pixel_data),
        time.perf_counter() - started,
        effort,
    )


def encode_jpeg_recompression(ds: Dataset) -> Encoded | None:
    """`ds` (JPEG baseline) with each frame's JPEG repacked as JPEG XL, restorable bit-exact; None
    if a frame cannot be (libjxl takes 8-bit baseline and progressive JPEG only)."""
    import imagecodecs
    from pydicom.encaps import encapsulate, generate_frames

    started = time.perf_counter()
    layout = PixelLayout.of(ds)
    streams, jpegs = [], []
    try:
        for jpeg in generate_frames(ds.PixelData, number_of_frames=layout.frames):
            jpegs.append(jpeg)
            packed = bytes(imagecodecs.jpegxl_encode_jpeg(jpeg, numthreads=_threads()))
            if restore_jpeg(packed) != jpeg:
                return None
            streams.append(packed)
    except Exception:  # noqa: BLE001 - not a JPEG libjxl can repack: send the file as it is
        return None
    pixel_data = encapsulate(streams, has_bot=layout.frames > 1)
    return Encoded(
        _on_the_wire(ds, pixel_data, JPEGXL_JPEG_RECOMPRESSION, frames_digest(jpegs)),
        JPEGXL_JPEG_RECOMPRESSION,
        len(pixel_data),
        time.perf_counter() - started,
        None,
    )


def restore_jpeg(data: bytes) -> bytes:
    """The original JPEG of a JPEG XL JPEG-recompression codestream. A frame's JPEG was padded to
    an even length in its fragment (PS3.5 A.4); the pad byte is part of what is restored."""
    import imagecodecs

    return bytes(imagecodecs.jpegxl_decode_jpeg(data, numthreads=_threads()))


def _on_the_wire(ds: Dataset, pixel_data: bytes, syntax: str, digest: str) -> Dataset:
    import copy

    from pydicom.uid import UID

    register_uids()
    out = copy.deepcopy(ds)
    out.private_block(DIGEST_GROUP, DIGEST_CREATOR, create=True).add_new(DIGEST_ELEMENT, "LO", digest)
    out.PixelData = pixel_data
    out["PixelData"].VR = "OB"
    out["PixelData"].is_undefined_length = True
    out.file_meta.TransferSyntaxUID = UID(syntax)
    return out


# --- Reading a codestream's header (ISO/IEC 18181-1, SizeHeader) -------------------------------
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
MAX_BOXES = 64


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> int:
        value = 0
        for i in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("codestream header cut short")
            value |= ((self.data[byte] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def u32_size(self) -> int:
        return 1 + self.read((9, 13, 18, 30)[self.read(2)])


def naked_codestream(data: bytes) -> bytes:
    """The codestream of a naked stream or of an ISO BMFF container (jxlc box, or first jxlp)."""
    if data[:2] == b"\xff\x0a":
        return data
    if not data.startswith(_CONTAINER):
        raise ValueError("not a JPEG XL codestream")
    pos = len(_CONTAINER)
    for _ in range(MAX_BOXES):
        if pos + 8 > len(data):
            break
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        head = 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if size < head:
            raise ValueError("bad JPEG XL box")
        body = data[pos + head : pos + size]
        if kind == b"jxlc":
            return body
        if kind == b"jxlp":
            return body[4:]
        pos += size
    raise ValueError("no codestream in the JPEG XL container")


def codestream_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) declared by a codestream, read from its first bytes without decoding."""
    stream = naked_codestream(data)
    if stream[:2] != b"\xff\x0a":
        raise ValueError("not a JPEG XL codestream")
    bits = _Bits(stream[2:32])
    small = bits.read(1)
    height = (bits.read(5) + 1) * 8 if small else bits.u32_size()
    ratio = bits.read(3)
    if ratio:
        num, den = _RATIOS[ratio]
        width = height * num // den
    else:
        width = (bits.read(5) + 1) * 8 if small else bits.u32_size()
    return width, height
