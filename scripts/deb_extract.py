#!/usr/bin/env python3
"""Unpacks the data of .deb files into a folder, as `dpkg -x` does, on machines without dpkg.

    deb_extract.py PREFIX FILE.deb [FILE.deb ...]

A .deb is an ar archive holding debian-binary, control.tar.* and data.tar.*; the files a
package installs are data.tar.*'s (xz, gzip, bzip2 or uncompressed; zstd where the Python has
it). Exit 2 on a file that is not a .deb.
"""
import io
import os
import sys
import tarfile


def members(path):
    """The (name, bytes) of each member of an ar archive."""
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise ValueError(f"{path}: not an ar archive (a .deb starts with !<arch>)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                return
            name = header[:16].decode("ascii").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            data = f.read(size)
            if size % 2:
                f.read(1)  # members are 2-byte aligned
            yield name, data


def data_tar(name, data):
    if name.endswith(".zst"):
        import zstandard  # noqa: PLC0415 - only Debian's newest packages use zstd
        return tarfile.open(fileobj=io.BytesIO(zstandard.ZstdDecompressor().decompress(
            data, max_output_size=1 << 31)))
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")


def extract(deb, prefix):
    found = False
    for name, data in members(deb):
        if name.startswith("data.tar"):
            with data_tar(name, data) as tar:
                safe = [m for m in tar.getmembers()
                        if not os.path.isabs(m.name) and ".." not in m.name.split("/")]
                tar.extractall(prefix, members=safe)
            found = True
    if not found:
        raise ValueError(f"{deb}: no data.tar.* member")


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    prefix, debs = argv[0], argv[1:]
    os.makedirs(prefix, exist_ok=True)
    try:
        for deb in debs:
            extract(deb, prefix)
            print(f"unpacked {os.path.basename(deb)}")
    except (OSError, ValueError, tarfile.TarError) as e:
        print(f"deb_extract: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
