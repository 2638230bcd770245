#!/usr/bin/env python3
"""Read a CVAT for images 1.1 export with datumaro (the library CVAT's import runs on) and say
what it kept: per mask its label, area, box and attributes, per label the declared attributes,
and every warning datumaro logs when writing it back in CVAT format (how an undeclared
attribute is dropped). Runs in .venv-datumaro (`make datumaro`); prints one JSON object.

    .venv-datumaro/bin/python scripts/check_cvat_export.py DATASET/cvat/annotations.xml
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main(xml: str) -> int:
    import datumaro as dm
    from datumaro.components.annotation import AnnotationType

    collect = _Collect()
    logging.getLogger().addHandler(collect)
    dataset = dm.Dataset.import_from(str(Path(xml).parent), "cvat")
    labels = dataset.categories()[AnnotationType.label]
    declared = {item.name: sorted(item.attributes) for item in labels.items}
    masks = []
    for item in dataset:
        for ann in item.annotations:
            if ann.type != AnnotationType.mask:
                continue
            image = ann.image
            ys, xs = image.nonzero()
            masks.append({"image": item.id, "subset": item.subset, "label": labels[ann.label].name,
                          "area": int(image.astype(bool).sum()),
                          "box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                          "attributes": {k: v for k, v in ann.attributes.items()}})
    import_warnings = list(collect.messages)
    collect.messages.clear()
    with tempfile.TemporaryDirectory() as out:
        dataset.export(out, "cvat", save_media=False)
    print(json.dumps({"declared": declared, "masks": masks, "import_warnings": import_warnings,
                      "export_warnings": collect.messages}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
