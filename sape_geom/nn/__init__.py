"""Neural building blocks (torch only): input encodings, progressive masks, the encoded field, the training loop."""
