"""Neural text-to-speech runners on ONNX Runtime (hibari, a Piper voice) and their bundles."""
