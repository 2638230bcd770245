"""The device pipeline (torch): uint8 upload, letterbox, IO-bound inference, YOLO mask decode and
ownership on the runtime's device; equal to the host pipeline, checked on CPU torch in the tests.
Imported only when a Segmenter chooses it, so the host pipeline never loads torch."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    pipeline:  DevicePipeline DeviceFrame
    letterbox: DeviceLetterbox resize_taps
    masks:     DeviceMaskDecoder Transfers pack_bits unpack_crops
    parity:    compare_pipelines
    runners:   DeviceRunner OrtBindingRunner TensorRTRunner bind_runner
""")
