"""Dataset side of the data loop: bag2coco export (and its CVAT form), COCO files checked and
written, merged for training, evaluation (COCOeval, boundary F1), model evaluation and decode parity."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    bag2coco:      export_bags
    bag_frames:    ExportConfig bag_items
    coco_check:    CocoFileError load_checked_coco
    coco_results:  detections_to_results
    evaluate:      evaluate_detections
    model_eval:    evaluate_model segment_coco_images segmented_coco_images
    report:        evaluation_report format_report
    decode_parity: compare_decodes
    dataset_files: DatasetFolderError split_files
    merge:         merge_datasets
    cvat_export:   write_cvat
""")
