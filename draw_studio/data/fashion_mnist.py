"""Fashion-MNIST (Zalando): MNIST's IDX format and file names, clothes instead of digits.

Also found where Debian's package ``dataset-fashion-mnist`` installs it:
/usr/share/datasets/fashion-mnist/ with the four ``*-ubyte.gz`` files.
"""

from __future__ import annotations

from pathlib import Path

from .download import download_files
from .imageset import DatasetSpec
from .mnist import IDX_FILES, load_idx_pair

FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


def download_fashion_mnist(directory: Path) -> None:
    """Fetch the four Fashion-MNIST ``.gz`` files into ``directory``."""
    download_files(directory, FASHION_MIRRORS, FASHION_GZ_MD5)


FASHION_MNIST = DatasetSpec("Fashion-MNIST", "fashion-mnist", IDX_FILES, load_idx_pair, download_fashion_mnist,
                            system_dirs=(DEBIAN_DIR,),
                            hint="or install Debian's package dataset-fashion-mnist")
