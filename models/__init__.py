"""Model runners (ONNX Runtime / TFLite, synchronous, no asyncio) and the model factory."""
