"""Dataset side of the data loop: COCO results and (later) bag export and evaluation."""
