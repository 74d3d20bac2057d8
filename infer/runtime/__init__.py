"""The scene pipeline: the ONNX model, run options, tile reader, tiling, stitching, writers, the run folder."""
